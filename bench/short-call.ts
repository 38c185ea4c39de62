// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A short Kernel.call (a few dozen guest instructions) against a bare engine
 * running the same bytes: the simulator's fixed cost per call (registers,
 * the return sentinel, the watchdog, fault bookkeeping) is all that differs.
 */
import { boot } from '../kernel-model/boot.js';
import { BareEngine } from './bare.js';
import { bestNs } from './machine.js';

export interface ShortCallRow {
  function: string;
  calls: number;
  simNsPerCall: number;
  bareNsPerCall: number;
  ratio: number;
}

export async function benchShortCall(calls: number, repeats = 7): Promise<ShortCallRow[]> {
  const { kernel } = await boot({ functions: 200 });
  const rows: ShortCallRow[] = [];
  try {
    for (const [fn, args] of [
      ['__task_pid_nr_ns', []],
      // sim_call_n(vfs_read, 1, &file_in): one untraced vfs_read, as the host-cost rows loop it.
      ['sim_call_n', [kernel.sym('vfs_read'), 1n, kernel.sym('file_in')]],
    ] as [string, bigint[]][]) {
      const bare = new BareEngine(kernel);
      try {
        const at = kernel.sym(fn);
        if (kernel.call(at, args) !== bare.call(kernel, at, args)) throw new Error(`${fn}: the bare engine computed another result`);
        // Short batches, alternated, best of many: on a shared machine a slow
        // moment then spoils one batch of each, not the reading.
        const batch = 100;
        let sim = Infinity;
        let raw = Infinity;
        for (let k = 0; k < repeats * Math.max(1, Math.round(calls / batch)); k++) {
          sim = Math.min(sim, bestNs(1, () => {
            for (let i = 0; i < batch; i++) kernel.call(at, args);
          }));
          raw = Math.min(raw, bestNs(1, () => {
            for (let i = 0; i < batch; i++) bare.call(kernel, at, args);
          }));
        }
        rows.push({
          function: fn,
          calls: batch,
          simNsPerCall: Math.round(sim / batch),
          bareNsPerCall: Math.round(raw / batch),
          ratio: Math.round((sim / raw) * 100) / 100,
        });
      } finally {
        bare.close();
      }
    }
  } finally {
    kernel.close();
  }
  return rows;
}
