// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Benchmarks of ftrace itself: what a traced call costs the guest
 * as irrelevant ops pile up, with and without per-ops trampolines; what it
 * costs the host; how patching scales with the number of sites; and whether
 * register/unregister cycles leak.
 */
import { boot } from '../kernel-model/boot.js';
import { eraRules } from '../kernel-model/ftrace/era.js';
import { siteTargetLabel } from '../kernel-model/ftrace/core.js';
import { CALL_SITES, ERAS, type CallSites, type Era, type KernelConfig } from '../kernel-model/kernel.js';
import { measureTracedCall } from '../kernel-model/workloads/workloads.js';
import { BareEngine } from './bare.js';
import { bestNs } from './machine.js';

export type CostConfig = 'trampolines' | 'list' | 'nop';
export const COST_CONFIGS: CostConfig[] = ['trampolines', 'list', 'nop'];

/** The traced function: a leaf (FENTRY; ret) so its own cost is one instruction. */
const TARGET = 'fsnotify_access';

interface Setup {
  close(): void;
  kernel: Awaited<ReturnType<typeof boot>>['kernel'];
  ftrace: Awaited<ReturnType<typeof boot>>['ftrace'];
}

/**
 * A kernel with one relevant ops on TARGET (unless nop) and `irrelevant` ops
 * on other functions: v3.18 with trampolines, v3.17 for the list function,
 * or the kernel `kernelConfig` names.
 */
async function setup(config: CostConfig, irrelevant: number, saveRegs: boolean, kernelConfig: Partial<KernelConfig> = {}): Promise<Setup> {
  const cfg: Partial<KernelConfig> = { functions: Math.max(200, irrelevant + 10), era: config === 'list' ? '3.17' : '3.18', ...kernelConfig };
  const { kernel, ftrace } = await boot(cfg);
  for (let i = 0; i < irrelevant; i++) {
    const o = ftrace.createOps({ name: `irrelevant${i}`, callback: 'counter' });
    ftrace.ftrace_set_filter(o, [`gen_func_${i}`]);
    ftrace.register_ftrace_function(o);
  }
  if (config !== 'nop') {
    const o = ftrace.createOps({ name: 'relevant', callback: saveRegs ? 'kprobe_regs' : 'counter', flags: saveRegs ? ['SAVE_REGS'] : [] });
    const r = ftrace.ftrace_set_filter(o, [TARGET]);
    if (!r.ok) throw new Error(r.message);
    ftrace.register_ftrace_function(o);
  }
  return { kernel, ftrace, close: () => kernel.close() };
}

export interface GuestCostRow {
  config: CostConfig;
  irrelevantOps: number;
  saveRegs: boolean;
  instructions: number;
}

export async function benchGuestCost(counts: number[]): Promise<GuestCostRow[]> {
  const rows: GuestCostRow[] = [];
  for (const saveRegs of [false, true]) {
    for (const config of COST_CONFIGS) {
      for (const irrelevantOps of counts) {
        const s = await setup(config, irrelevantOps, saveRegs);
        try {
          const instructions = measureTracedCall(s.kernel, s.ftrace, TARGET, [s.kernel.sym('file_in')]);
          rows.push({ config, irrelevantOps, saveRegs, instructions });
        } finally {
          s.close();
        }
      }
    }
  }
  return rows;
}

export interface EraCostRow {
  era: Era;
  callsites: CallSites;
  /** Guest instructions of one traced call of TARGET, per count of irrelevant ops. */
  instructions: number[];
  /** The same with the relevant ops asking for SAVE_REGS, alone. */
  saveRegs: number;
  /** What TARGET's call site calls with one irrelevant ops. */
  site: string;
}

/** The cost of one traced call on each kernel: every era, both kinds of call site where the era had both. */
export async function benchEraCost(counts: number[]): Promise<EraCostRow[]> {
  const rows: EraCostRow[] = [];
  for (const era of ERAS) {
    for (const callsites of CALL_SITES) {
      if (callsites === 'mcount' && !eraRules(era).mcount) continue;
      const kernel = { era, callsites };
      const measure = async (irrelevant: number, saveRegs: boolean, look?: (s: Setup) => void) => {
        const s = await setup('trampolines', irrelevant, saveRegs, kernel);
        try {
          look?.(s);
          return measureTracedCall(s.kernel, s.ftrace, TARGET, [s.kernel.sym('file_in')]);
        } finally {
          s.close();
        }
      };
      let site = '';
      const instructions: number[] = [];
      for (const n of counts) instructions.push(await measure(n, false, n === 1 ? (s) => void (site = siteTargetLabel(s.ftrace.siteTarget(s.ftrace.recordOf(TARGET)!))) : undefined));
      rows.push({ era, callsites, instructions, saveRegs: await measure(0, true), site });
    }
  }
  return rows;
}

export interface HostCostRow {
  config: CostConfig;
  irrelevantOps: number;
  saveRegs: boolean;
  nsPerCall: number;
  bareNsPerCall: number;
  bareUnicornRatio: number;
}


/** Wall time per traced call: a guest loop calling TARGET, in the simulator and on a bare engine. */
export async function benchHostCost(counts: number[], calls: number): Promise<HostCostRow[]> {
  const rows: HostCostRow[] = [];
  for (const saveRegs of [false, true]) {
    for (const config of COST_CONFIGS) {
      for (const irrelevantOps of counts) {
        const s = await setup(config, irrelevantOps, saveRegs);
        const bare = new BareEngine(s.kernel);
        try {
          // An untraced call is ~20x cheaper: more of them, for a run of similar length.
          const n = config === 'nop' ? calls * 10 : calls;
          const args = [s.kernel.sym(TARGET), BigInt(n), s.kernel.sym('file_in')];
          const loop = s.kernel.sym('sim_call_n');
          s.kernel.call(loop, args); // translate once
          bare.call(s.kernel, loop, args);
          // Alternate the two, so that a slow moment of a shared machine hits both alike.
          let sim = Infinity;
          let raw = Infinity;
          for (let k = 0; k < 5; k++) {
            sim = Math.min(sim, bestNs(1, () => s.kernel.call(loop, args)));
            raw = Math.min(raw, bestNs(1, () => bare.call(s.kernel, loop, args)));
          }
          rows.push({
            config,
            irrelevantOps,
            saveRegs,
            nsPerCall: Math.round(sim / n),
            bareNsPerCall: Math.round(raw / n),
            bareUnicornRatio: Math.round((sim / raw) * 100) / 100,
          });
        } finally {
          bare.close();
          s.close();
        }
      }
    }
  }
  return rows;
}

export interface ClockCostRow {
  /** Whether the trace clock ran (KernelConfig.traceClock). */
  clock: boolean;
  nsPerCall: number;
}

/**
 * What the trace clock costs the host: a guest loop calling TARGET, traced by
 * the function tracer (which stamps every entry), with the clock running and
 * with it off (every stamp 0).
 */
export async function benchClockCost(calls: number): Promise<ClockCostRow[]> {
  const rows: ClockCostRow[] = [];
  for (const clock of [false, true]) {
    const { kernel, ftrace } = await boot({ functions: 200, traceClock: clock });
    try {
      const o = ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
      const r = ftrace.ftrace_set_filter(o, [TARGET]);
      if (!r.ok) throw new Error(r.message);
      ftrace.register_ftrace_function(o);
      const args = [kernel.sym(TARGET), BigInt(calls), kernel.sym('file_in')];
      const loop = kernel.sym('sim_call_n');
      kernel.call(loop, args); // translate once
      let best = Infinity;
      for (let k = 0; k < 5; k++) best = Math.min(best, bestNs(1, () => kernel.call(loop, args)));
      rows.push({ clock, nsPerCall: Math.round(best / calls) });
    } finally {
      kernel.close();
    }
  }
  return rows;
}

export interface ScaleRow {
  functions: number;
  sites: number;
  bootMs: number;
  registerAllMs: number;
  toListMs: number;
  backMs: number;
  unregisterMs: number;
}

const ms = (f: () => void) => {
  const t = performance.now();
  f();
  return Math.round((performance.now() - t) * 10) / 10;
};

/**
 * Patching at scale: one ops over every function (every site to its
 * trampoline), a second one over every function (every site to the shared
 * caller and the list function), the second one gone (every site back to the
 * first one's trampoline: the later kernels' rule, era 'modern'), then the
 * first one gone (every site back to NOP).
 */
export async function benchScale(sizes: number[]): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  for (const functions of sizes) {
    const t = performance.now();
    const { kernel, ftrace } = await boot({ functions, era: 'modern' });
    const bootMs = Math.round((performance.now() - t) * 10) / 10;
    try {
      const a = ftrace.createOps({ name: 'a', callback: 'function_trace' });
      const b = ftrace.createOps({ name: 'b', callback: 'counter' });
      const check = (what: string, kind: string) => {
        for (const rec of [ftrace.records.at(0), ftrace.records.at(ftrace.records.length - 1)]) {
          if (ftrace.siteTarget(rec).kind !== kind) throw new Error(`${what}: a site is ${ftrace.siteTarget(rec).kind}, not ${kind}`);
        }
      };
      const registerAllMs = ms(() => ftrace.register_ftrace_function(a));
      check('register', 'trampoline');
      const toListMs = ms(() => ftrace.register_ftrace_function(b));
      check('to list', 'ftrace_caller');
      const backMs = ms(() => ftrace.unregister_ftrace_function(b));
      check('back', 'trampoline');
      const unregisterMs = ms(() => ftrace.unregister_ftrace_function(a));
      check('unregister', 'nop');
      rows.push({ functions, sites: ftrace.records.length, bootMs, registerAllMs, toListMs, backMs, unregisterMs });
    } finally {
      kernel.close();
    }
  }
  return rows;
}

export interface MemoryRow {
  cycles: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  moduleBytesBefore: number;
  moduleBytesAfter: number;
  kmallocBytesBefore: number;
  kmallocBytesAfter: number;
}

/** register/unregister cycles of a static ops (its trampoline comes and goes) and a dynamic one (kmalloc'd and freed). */
export async function benchMemory(cycles: number): Promise<MemoryRow> {
  const { kernel, ftrace } = await boot({ functions: 200 });
  try {
    const stat = ftrace.createOps({ name: 'static', callback: 'function_trace' });
    ftrace.ftrace_set_filter(stat, ['vfs_read']);
    const cycle = (i: number) => {
      ftrace.register_ftrace_function(stat);
      const dyn = ftrace.createOps({ name: `dyn${i}`, callback: 'kprobe_regs', flags: ['SAVE_REGS'], dynamic: true });
      ftrace.ftrace_set_filter(dyn, ['vfs_read']);
      ftrace.register_ftrace_function(dyn);
      kernel.call('vfs_read', [kernel.sym('file_in'), kernel.userBuffer, 8n]);
      ftrace.unregister_ftrace_function(dyn);
      ftrace.destroyOps(dyn);
      ftrace.unregister_ftrace_function(stat);
    };
    for (let i = 0; i < 200; i++) cycle(i); // reach a steady state before the first reading
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const moduleBytesBefore = kernel.moduleSpace!.bytesInUse;
    const kmallocBytesBefore = kernel.kmalloc.bytesInUse;
    for (let i = 0; i < cycles; i++) cycle(i);
    global.gc?.();
    return {
      cycles,
      rssBeforeMb: Math.round(rssBefore / 1e5) / 10,
      rssAfterMb: Math.round(process.memoryUsage().rss / 1e5) / 10,
      moduleBytesBefore,
      moduleBytesAfter: kernel.moduleSpace!.bytesInUse,
      kmallocBytesBefore,
      kmallocBytesAfter: kernel.kmalloc.bytesInUse,
    };
  } finally {
    kernel.close();
  }
}
