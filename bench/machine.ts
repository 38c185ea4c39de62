// SPDX-License-Identifier: GPL-2.0-or-later
/* Benchmarks of the machine itself: boot, guest speed against bare Unicorn, engine cycles. */
import { Engine, GuestMemory, RW, RX, openEngineCount } from '../emu/index.js';
import { boot } from '../kernel-model/boot.js';
import { BareEngine } from './bare.js';

export interface BootRow {
  functions: number;
  records: number;
  cold: { assembleMs: number; loadMs: number; nopMs: number; totalMs: number };
  cached: { assembleMs: number; loadMs: number; nopMs: number; totalMs: number };
}

const r1 = (x: number) => Math.round(x * 10) / 10;

export async function benchBoot(sizes: number[], cacheDir: string): Promise<BootRow[]> {
  const rows: BootRow[] = [];
  for (const functions of sizes) {
    const pick = (t: { assembleMs: number; loadMs: number; nopMs: number; totalMs: number }) => ({
      assembleMs: r1(t.assembleMs),
      loadMs: r1(t.loadMs),
      nopMs: r1(t.nopMs),
      totalMs: r1(t.totalMs),
    });
    // Cold: a cache directory of its own, empty. Cached: the same again.
    const cold = await boot({ functions, cacheDir });
    cold.kernel.close();
    const warm = await boot({ functions, cacheDir });
    warm.kernel.close();
    rows.push({ functions, records: cold.ftrace.records.length, cold: pick(cold.timings), cached: pick(warm.timings) });
  }
  return rows;
}

export interface SpeedRow {
  workload: string;
  instructions: number;
  simMips: number;
  bareMips: number;
  ratio: number;
}

/** The shortest of `times` runs of fn, in nanoseconds. */
export function bestNs(times: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < times; i++) {
    const t = process.hrtime.bigint();
    fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t));
  }
  return b;
}

/**
 * Guest instructions per second with no hooks, in the simulator (Kernel.call)
 * and on a bare engine with the same bytes; the instruction count comes from
 * one counted run.
 */
export async function benchSpeed(iterations: number, repeats: number): Promise<SpeedRow[]> {
  // Counting needs a code hook; timing is done on another kernel that never had one.
  const counted = await boot({ functions: 2000 });
  const { kernel } = await boot({ functions: 2000 });
  const rows: SpeedRow[] = [];
  try {
    const work = [
      { workload: `syscalls x${iterations}`, fn: 'sim_workload_syscalls', args: [BigInt(iterations), kernel.userBuffer] },
      { workload: `callgraph x${Math.ceil(iterations / 4)}`, fn: 'sim_workload_callgraph', args: [BigInt(Math.ceil(iterations / 4)), 1n] },
    ];
    for (const w of work) {
      const counter = counted.kernel.machine.cpu.addInstructionCounter(0xffffffff81000000n, 0xffffffffffffffffn);
      const expected = counted.kernel.call(w.fn, w.args);
      const instructions = counter.count();
      counted.kernel.machine.cpu.removeHook(counter.handle);
      const bare = new BareEngine(kernel);
      try {
        if (bare.call(kernel, kernel.sym(w.fn), w.args) !== expected) throw new Error('the bare engine computed another result');
        if (kernel.call(w.fn, w.args) !== expected) throw new Error('the simulator computed another result');
        // Alternate the two, so that a slow moment of a shared machine hits both alike.
        let simMs = Infinity;
        let bareMs = Infinity;
        for (let k = 0; k < repeats; k++) {
          simMs = Math.min(simMs, bestNs(1, () => kernel.call(w.fn, w.args)) / 1e6);
          bareMs = Math.min(bareMs, bestNs(1, () => bare.call(kernel, kernel.sym(w.fn), w.args)) / 1e6);
        }
        rows.push({
          workload: w.workload,
          instructions,
          simMips: Math.round(instructions / simMs / 1000),
          bareMips: Math.round(instructions / bareMs / 1000),
          ratio: Math.round((simMs / bareMs) * 100) / 100,
        });
      } finally {
        bare.close();
      }
    }
  } finally {
    kernel.close();
    counted.kernel.close();
  }
  return rows;
}

export interface CycleRow {
  cycles: number;
  openEnginesAfter: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  usPerCycle: number;
}

/** Opens, runs and closes engines over one memory, many times: nothing may stay behind. */
export function benchEngineCycles(cycles: number): CycleRow {
  const m = new GuestMemory();
  const text = 0xffffffff81000000n;
  m.map('text', text, 0x10000, RX);
  m.map('stack', 0xffffc90000000000n, 0x4000, RW);
  m.write(text, Uint8Array.of(0xb8, 1, 0, 0, 0, 0xc3));
  const sp = 0xffffc90000003ff8n;
  const cycle = () => {
    const e = Engine.open(m);
    m.writeU64(sp, text + 0x100n);
    e.writeReg('rsp', sp);
    e.run({ begin: text, until: text + 0x100n });
    e.close();
  };
  for (let i = 0; i < 200; i++) cycle(); // warm up allocators before the first reading
  global.gc?.();
  const before = process.memoryUsage().rss;
  const t = performance.now();
  for (let i = 0; i < cycles; i++) cycle();
  const us = ((performance.now() - t) * 1000) / cycles;
  global.gc?.();
  const after = process.memoryUsage().rss;
  return {
    cycles,
    openEnginesAfter: openEngineCount(),
    rssBeforeMb: Math.round(before / 1e5) / 10,
    rssAfterMb: Math.round(after / 1e5) / 10,
    usPerCycle: Math.round(us),
  };
}
