// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Other CPUs at work while CPU 0 runs a scenario: each CPU after the first
 * runs two tasks (the system-call workload and the call graph) under the
 * seeded scheduler, between patch phases and for a few quanta after every
 * step, so a recording holds several CPUs and several tasks.
 */
import type { Ftrace } from '../ftrace/core.js';
import type { Kernel } from '../kernel.js';
import { Smp } from './scheduler.js';

export interface BackgroundCpus {
  smp: Smp;
  /** Runs the other CPUs for a while: called after each scenario step. */
  afterStep(): void;
  /** Lets every CPU leave ftrace code (no half-written event) and stops scheduling at syncs. */
  finish(): void;
}

export function startBackgroundCpus(booted: { kernel: Kernel; ftrace: Ftrace }, seed: number, quantaPerStep = 20): BackgroundCpus {
  const { kernel } = booted;
  const smp = new Smp(booted, { seed, quantum: [20, 400], quantaPerSync: 1 });
  for (let c = 1; c < kernel.machine.cpus.length; c++) {
    // Each CPU has its own user buffer page, so the workloads do not share data.
    smp.start(c, { fn: 'sim_workload_syscalls', args: [5n, kernel.userBuffer + BigInt(c * 0x1000)] });
    smp.start(c, { fn: 'sim_workload_callgraph', args: [2n, BigInt(c)] });
  }
  smp.attach();
  return {
    smp,
    afterStep: () => smp.run(quantaPerStep),
    finish: () => {
      smp.quiesce();
      smp.detach();
    },
  };
}
