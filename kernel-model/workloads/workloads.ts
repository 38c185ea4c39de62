// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Running the model kernel's code: calling a function with sensible
 * arguments, the built-in workloads, and measuring what one traced call
 * costs in guest instructions.
 */
import type { Ftrace } from '../ftrace/core.js';
import { GEN_PREFIX } from '../generate.js';
import type { Kernel } from '../kernel.js';

export const WORKLOAD_NAMES = ['syscalls', 'callgraph'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** Arguments that make each hand-written function do its normal work. */
export function defaultArgs(kernel: Kernel, fn: string): bigint[] {
  const ub = kernel.userBuffer;
  const d = (n: string) => kernel.sym(n);
  switch (fn) {
    case 'do_syscall_64':
      return [39n]; // getpid
    case '__x64_sys_read':
    case 'ksys_read':
      return [3n, ub, 64n];
    case '__x64_sys_write':
    case 'ksys_write':
      return [4n, ub, 64n];
    case 'vfs_read':
    case 'new_sync_read':
      return [d('file_in'), ub, 64n];
    case 'vfs_write':
    case 'new_sync_write':
      return [d('file_out'), ub, 64n];
    case 'rw_verify_area':
      return [d('file_in'), 64n];
    case 'fdget_pos':
      return [3n];
    case 'fdput_pos':
    case 'fsnotify_access':
    case 'fsnotify_modify':
      return [d('file_in')];
    case 'copy_to_user':
      return [ub, d('file_data'), 64n];
    case '_raw_spin_lock':
    case '_raw_spin_unlock':
      return [d('sim_scratch_lock')];
    default:
      return fn.startsWith(GEN_PREFIX) ? [1n] : [];
  }
}

/** Runs a workload; returns what the guest computed. */
export function runWorkload(kernel: Kernel, name: WorkloadName, iterations: number): bigint {
  switch (name) {
    case 'syscalls':
      return kernel.call('sim_workload_syscalls', [BigInt(iterations), kernel.userBuffer]);
    case 'callgraph':
      return kernel.call('sim_workload_callgraph', [BigInt(iterations), 1n]);
  }
}

/**
 * Guest instructions one traced call of `fn` costs: the call site's own
 * instruction plus every instruction of the ftrace machinery (callers,
 * trampolines, the list function, callbacks) run before `fn` continues
 * after its call site. With the site a NOP this is 1.
 */
export function measureTracedCall(kernel: Kernel, ftrace: Ftrace, fn: string, args: readonly bigint[]): number {
  const rec = ftrace.recordOf(fn);
  if (!rec) throw new Error(`${fn} has no fentry call site`);
  const site = rec.ip;
  const cpu = kernel.machine.cpu;
  let armed = false;
  let n = 0;
  const count = () => {
    if (armed) n++;
  };
  const hooks = [
    ...ftrace.codeRanges.map(([a, b]) => cpu.addCodeHook(count, a, b)),
    cpu.addCodeHook(() => {
      armed = true;
      n++;
    }, site, site),
    cpu.addCodeHook(() => {
      armed = false;
    }, site + 5n, site + 5n),
  ];
  try {
    kernel.call(fn, args);
  } finally {
    for (const h of hooks) cpu.removeHook(h);
  }
  return n;
}
