// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Why the int3 protocol exists: other CPUs run the system-call workload while
 * CPU 0 turns the function tracer on and off over every call site. With the
 * naive patcher a CPU can fetch a half-written call and run into the weeds;
 * with the int3 protocol, the same interleaving (same seed) is safe. In
 * graph mode the graph tracer comes and goes with it: its own patch site,
 * the jmp at ftrace_graph_call, is changed by the same protocol.
 */
import { hex } from '../../emu/index.js';
import { boot } from '../boot.js';
import type { KernelConfig } from '../kernel.js';
import { Smp } from './scheduler.js';
import { TraceBuffer } from '../trace/ring-buffer.js';
import { checkEvents, currentRules } from '../trace/check-events.js';

export interface PatchRaceOptions {
  cpus: number;
  patching: KernelConfig['patching'];
  era: KernelConfig['era'];
  seed: number;
  /** Register/unregister rounds. */
  rounds: number;
  /** Graph mode: the function graph tracer joins the function tracer, so ftrace_graph_call is patched too. */
  graph?: boolean;
}

export interface PatchRaceResult {
  options: PatchRaceOptions;
  passed: boolean;
  faults: { cpu: number; kind: string; rip: string; symbol: string | null; report: string }[];
  events: number;
  rdxProblems: string[];
  int3Hits: number;
  completions: Record<string, number>;
  /** Graph mode: graph events read, and whether the graph tracer ever found a return stack empty. */
  graphEvents: number;
  graphKilled: boolean;
}

export async function patchRace(o: PatchRaceOptions): Promise<PatchRaceResult> {
  const { kernel, ftrace } = await boot({ functions: 50, cpus: o.cpus, patching: o.patching, era: o.era });
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: o.seed, quantum: [3, 60], quantaPerSync: 1 });
    for (let c = 1; c < o.cpus; c++) {
      // Each CPU has its own user buffer page, so the workloads do not share data.
      smp.start(c, { fn: 'sim_workload_syscalls', args: [1000n, kernel.userBuffer + BigInt(c * 0x1000)] });
    }
    const tracer = ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
    const graph = o.graph ? ftrace.createOps({ name: 'graph', callback: 'function_graph' }) : undefined;
    const trace = new TraceBuffer(kernel);
    smp.run(20);
    smp.attach();
    for (let r = 0; r < o.rounds && smp.faults.length === 0; r++) {
      ftrace.register_ftrace_function(tracer);
      if (graph) ftrace.graph.register(graph);
      smp.run(20);
      if (graph) ftrace.graph.unregister(graph);
      ftrace.unregister_ftrace_function(tracer);
      smp.run(20);
    }
    smp.detach();
    // Events are checked against the tracer: whenever it ran, %rdx must have been its ops.
    ftrace.register_ftrace_function(tracer);
    const { events } = trace.read(0n);
    const { rdx } = checkEvents(ftrace, events.filter((e) => e.callback === 'function_trace'), currentRules(ftrace));
    ftrace.unregister_ftrace_function(tracer);
    const completions: Record<string, number> = {};
    for (let c = 1; c < o.cpus; c++) completions[`cpu${c}`] = smp.completions(c);
    const faults = smp.faults.map((f) => ({ cpu: f.cpu, kind: f.fault.kind, rip: hex(f.fault.rip), symbol: f.fault.symbol ?? null, report: f.fault.report() }));
    return {
      options: o,
      passed: faults.length === 0 && rdx.length === 0 && !(graph && ftrace.graph.dead),
      faults,
      events: events.length,
      rdxProblems: rdx.map((p) => `event ${p.seq} in ${p.function}: ${p.problem}`),
      int3Hits: ftrace.arch.int3Hits,
      completions,
      graphEvents: events.filter((e) => e.callback === 'function_graph').length,
      graphKilled: !!graph && ftrace.graph.dead,
    };
  } finally {
    kernel.close();
  }
}
