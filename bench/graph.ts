// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the function graph tracer costs in the guest: the instructions one
 * traced call runs in ftrace's code (entry through the caller or trampoline,
 * and the return through return_to_handler), beside the function tracer's.
 */
import { boot } from '../kernel-model/boot.js';
import type { CallbackName } from '../kernel-model/abi.js';
import type { Era } from '../kernel-model/kernel.js';
import { defaultArgs } from '../kernel-model/workloads/workloads.js';

export interface GraphCostRow {
  tracer: CallbackName;
  era: Era;
  /** Guest instructions in ftrace's code (callers, trampolines, callbacks, return_to_handler) for one call of the function. */
  ftraceInstructions: number;
}

export async function benchGraphCost(fn = 'fsnotify_access'): Promise<GraphCostRow[]> {
  const rows: GraphCostRow[] = [];
  for (const era of ['3.18', 'modern'] as const) {
    for (const tracer of ['function_trace', 'function_graph'] as const) {
      const { kernel, ftrace } = await boot({ functions: 50, era });
      try {
        const ops = ftrace.createOps({ name: 'tracer', callback: tracer });
        const r = tracer === 'function_graph' ? ftrace.graph.register(ops) : ftrace.register_ftrace_function(ops);
        if (!r.ok) throw new Error(r.message);
        const args = defaultArgs(kernel, fn);
        kernel.call(fn, args); // warm: translations made
        const counters = ftrace.codeRanges.map(([a, b]) => kernel.machine.cpu.addInstructionCounter(a, b));
        kernel.call(fn, args);
        rows.push({ tracer, era, ftraceInstructions: counters.reduce((n, c) => n + c.count(), 0) });
        for (const c of counters) kernel.machine.cpu.removeHook(c.handle);
      } finally {
        kernel.close();
      }
    }
  }
  return rows;
}
