// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A scenario step as the web page draws it: the scenario is run up to the
 * step on a fresh kernel, then explain and tracefs read the live guest, as
 * `ftrace-sim explain --json` and `ftrace-sim tracefs` do, and one more
 * traced call is followed to count the instructions spent in each hop.
 */
import { disassemble, formatInsnText, ripTarget } from '../asm/disasm.js';
import { GuestFault, hex, hexBytes, permsToString } from '../emu/index.js';
import { CALLBACK_FUNC, DYN_FTRACE, FTRACE_OPS_FL, OPS, type OpsFlagName } from '../kernel-model/abi.js';
import { explainFunction, siteStages, type Explanation } from '../kernel-model/views/explain.js';
import { siteTargetLabel, type Ftrace } from '../kernel-model/ftrace/core.js';
import type { FtraceOps } from '../kernel-model/ftrace/ops.js';
import { eraRules } from '../kernel-model/ftrace/era.js';
import type { Kernel } from '../kernel-model/kernel.js';
import { enabledFunctions, setFtraceHash, traceFile } from '../kernel-model/views/tracefs.js';
import { defaultArgs } from '../kernel-model/workloads/workloads.js';
import { inspectScenario, type Check } from '../scenarios/engine/run.js';
import type { Scenario, ScenarioConfig } from '../scenarios/engine/types.js';

/** One stretch of a traced call spent in one symbol. */
export interface Hop {
  name: string;
  instructions: number;
}

export interface CallerLine {
  offset: number;
  address: bigint;
  bytes: string;
  instruction: string;
  /** What this instruction is to ftrace: the op load, the call the trampoline patches, or nothing. */
  role: 'op_ptr' | 'call' | null;
}

export interface OpsView {
  name: string;
  callback: string;
  func: string;
  address: bigint;
  dynamic: boolean;
  flags: string[];
  registered: boolean;
  trampoline: bigint | null;
  trampolineSize: number;
  invocations: number;
}

export interface MemoryObject {
  region: string;
  name: string;
  address: bigint;
  size: number;
  kind: 'trampoline' | 'ops' | 'hash' | 'buffer' | 'text' | 'data' | 'records';
}

export interface MemoryRegion {
  name: string;
  start: bigint;
  size: number;
  perms: string;
}

export interface StepSnapshot {
  scenario: string;
  era: ScenarioConfig['era'];
  trampolines: boolean;
  /** The step asked for, and how many steps ran (fewer when one faulted). */
  step: number;
  stepsRun: number;
  function: string;
  explanation: Explanation;
  /** The code the trampoline was copied from, or that the site calls when no trampoline. */
  caller: { name: string; address: bigint; lines: CallerLine[] } | null;
  hops: Hop[];
  /** When the traced call faulted (e.g. after a corrupted caller): the oops, and the hops up to it. */
  fault: string | null;
  ops: OpsView[];
  memory: { regions: MemoryRegion[]; objects: MemoryObject[] };
  tracefs: { enabled_functions: string; trace: string; traceLines: number; set_ftrace_filter: Record<string, string>; set_ftrace_notrace: Record<string, string> };
  failedChecks: Check[];
  dmesg: string[];
}

/** The trace file is cut to its header and last lines: a workload step writes thousands. */
const TRACE_TAIL = 60;

/** Functions a scenario names, in the order it names them. */
export function scenarioFunctions(s: Scenario): string[] {
  const names: string[] = [];
  const add = (n: string) => {
    if (!names.includes(n)) names.push(n);
  };
  for (const st of s.steps) {
    if (st.kind === 'expect' && st.expect.callsite) Object.keys(st.expect.callsite).forEach(add);
    if (st.kind === 'call' || st.kind === 'measure') add(st.function);
  }
  if (!names.length) add('vfs_read');
  return names;
}

/** The function to show: one on a trampoline if there is one, so both sides of per-ops trampolines are in view. */
function pickFunction(s: Scenario, ftrace: Ftrace): string {
  const names = scenarioFunctions(s).filter((n) => ftrace.recordOf(n));
  for (const n of names) if (ftrace.siteTarget(ftrace.recordOf(n)!).kind === 'trampoline') return n;
  return names[0] ?? 'vfs_read';
}

/** Runs `fn` once more with hooks over ftrace's code, counting the instructions spent in each symbol. */
export function countHops(kernel: Kernel, ftrace: Ftrace, fn: string, site: bigint, hops: Hop[] = []): Hop[] {
  const cpu = kernel.machine.cpu;
  let armed = false;
  const visit = (a: bigint) => {
    if (!armed) return;
    const name = kernel.symbols.format(a, { short: true }) ?? hex(a);
    const last = hops[hops.length - 1];
    if (last && last.name === name) last.instructions++;
    else hops.push({ name, instructions: 1 });
  };
  const hooks = [
    cpu.addCodeHook(() => {
      armed = true;
      hops.push({ name: `${fn} call site`, instructions: 1 });
    }, site, site),
    cpu.addCodeHook(() => {
      armed = false;
    }, site + 5n, site + 5n),
    ...ftrace.codeRanges.map(([a, b]) => cpu.addCodeHook((x) => visit(x), a, b)),
  ];
  try {
    kernel.call(fn, defaultArgs(kernel, fn));
  } finally {
    for (const h of hooks) cpu.removeHook(h);
  }
  return hops;
}

/**
 * The caller a trampoline is copied from, or that the site calls: the part
 * create_trampoline() copies, or before v3.18 (nothing copied yet) the
 * whole function, with the op load (the load of function_trace_op) and the
 * call marked.
 */
function callerListing(kernel: Kernel, ftrace: Ftrace, saveRegs: boolean): NonNullable<StepSnapshot['caller']> {
  const name = saveRegs ? 'ftrace_regs_caller' : 'ftrace_caller';
  const sym = kernel.symbols.get(name)!;
  const start = sym.address;
  const size = eraRules(kernel.config.era).trampolines ? ftrace.arch.trampolineLayout(saveRegs).size : sym.size;
  const callOffset = Number(kernel.sym(saveRegs ? 'ftrace_regs_call' : 'ftrace_call') - start);
  const opRef = kernel.sym('function_trace_op');
  const lines = disassemble(kernel.memory.read(start, size), start).map((i) => {
    const offset = Number(i.address - start);
    return {
      offset,
      address: i.address,
      bytes: hexBytes(i.bytes),
      instruction: formatInsnText(i, (a) => kernel.symbolize(a)),
      role: ripTarget(i) === opRef ? ('op_ptr' as const) : offset === callOffset ? ('call' as const) : null,
    };
  });
  return { name, address: start, lines };
}

function opsView(ftrace: Ftrace, o: FtraceOps): OpsView {
  return {
    name: o.name,
    callback: o.callback,
    func: CALLBACK_FUNC[o.callback],
    address: o.addr,
    dynamic: o.kmalloced,
    flags: (Object.keys(FTRACE_OPS_FL) as OpsFlagName[]).filter((f) => o.hasFlag(f)),
    registered: ftrace.registered().includes(o),
    trampoline: o.trampoline !== 0n ? o.trampoline : null,
    trampolineSize: o.trampolineSize,
    invocations: Number(o.invocations),
  };
}

function memoryView(kernel: Kernel, ftrace: Ftrace, ops: readonly FtraceOps[]): StepSnapshot['memory'] {
  const regions = kernel.memory.allRegions().map((r) => ({ name: r.name, start: r.base, size: r.size, perms: permsToString(r.perms) }));
  const regionOf = (a: bigint) => regions.find((r) => a >= r.start && a < r.start + BigInt(r.size))?.name ?? '?';
  const objects: MemoryObject[] = [];
  const add = (name: string, address: bigint, size: number, kind: MemoryObject['kind']) => objects.push({ region: regionOf(address), name, address, size, kind });
  for (const n of ['ftrace_caller', 'ftrace_regs_caller', 'ftrace_ops_list_func']) {
    const s = kernel.symbols.get(n);
    if (s) add(n, s.address, s.size, 'text');
  }
  add('function_trace_op', kernel.sym('function_trace_op'), 8, 'data');
  add('dyn_ftrace records', kernel.recordsBase, ftrace.records.all().length * DYN_FTRACE.SIZE, 'records');
  const buf = kernel.memory.readU64(kernel.sym('trace_buf'));
  add('trace ring buffer', buf, kernel.kmalloc.sizeOf(buf) ?? 0, 'buffer');
  for (const o of ops) {
    add(`ftrace_ops ${o.name}`, o.addr, OPS.SIZE, 'ops');
    if (o.trampoline !== 0n) add(`trampoline of ${o.name}`, o.trampoline, o.trampolineSize, 'trampoline');
    for (const [slot, what] of [[OPS.FILTER_HASH, 'filter'], [OPS.NOTRACE_HASH, 'notrace']] as const) {
      const h = kernel.memory.readU64(o.addr + BigInt(slot));
      if (h !== 0n) add(`${o.name} ${what} hash`, h, kernel.kmalloc.sizeOf(h) ?? 0, 'hash');
    }
  }
  objects.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { regions, objects };
}

/**
 * Runs `s` (with `config` over its own) up to `step` and reads the step's
 * state. `fn` defaults to the first function the scenario names that is on a
 * trampoline at that step.
 */
export async function stepSnapshot(s: Scenario, step: number, fn?: string, config: Partial<ScenarioConfig> = {}): Promise<StepSnapshot> {
  const sc: Scenario = { ...s, config: { ...s.config, ...config } };
  let snap: StepSnapshot | undefined;
  await inspectScenario(sc, step, ({ kernel, ftrace, ops, stepsRun, failedChecks }) => {
    const name = fn ?? pickFunction(s, ftrace);
    const rec = ftrace.recordOf(name);
    if (!rec) throw new RangeError(`'${name}' is not a function with an fentry call site`);
    const all = [...ops.values()];
    // Everything read from memory first: explain and countHops run guest code.
    const trace = traceFile(kernel).split('\n').slice(0, -1);
    const head = trace.filter((l) => l.startsWith('#'));
    const body = trace.filter((l) => !l.startsWith('#'));
    const tracefs = {
      enabled_functions: enabledFunctions(kernel, ftrace),
      trace: [...head, ...body.slice(-TRACE_TAIL)].join('\n') + '\n',
      traceLines: body.length,
      set_ftrace_filter: Object.fromEntries(all.map((o) => [o.name, setFtraceHash(kernel, o, 'filter')])),
      set_ftrace_notrace: Object.fromEntries(all.map((o) => [o.name, setFtraceHash(kernel, o, 'notrace')])),
    };
    const memory = memoryView(kernel, ftrace, all);
    const opsViews = all.map((o) => opsView(ftrace, o));
    const dmesg = [...kernel.dmesg];
    const target = ftrace.siteTarget(rec);
    const tramp = target.kind === 'trampoline' ? ftrace.ops(target.ops) : undefined;
    const saveRegs = tramp ? tramp.hasFlag('SAVE_REGS') : target.kind === 'ftrace_regs_caller';
    const caller = callerListing(kernel, ftrace, saveRegs);
    let explanation: Explanation;
    let hops: Hop[];
    let fault: string | null = null;
    try {
      explanation = explainFunction(kernel, ftrace, name);
      hops = countHops(kernel, ftrace, name, rec.ip);
    } catch (e) {
      if (!(e instanceof GuestFault)) throw e;
      // The call crashes: what the site holds is still worth showing, and the path up to the crash.
      fault = e.report();
      explanation = { function: name, site: rec.ip, target: siteTargetLabel(target), stages: siteStages(kernel, ftrace, rec), trampoline: null, path: [], callbacks: [], graph: null, symbolize: (a) => kernel.symbolize(a) };
      hops = [];
      try {
        countHops(kernel, ftrace, name, rec.ip, hops);
      } catch (again) {
        if (!(again instanceof GuestFault)) throw again;
      }
    }
    snap = {
      scenario: s.name,
      era: sc.config.era,
      trampolines: eraRules(sc.config.era).trampolines,
      step,
      stepsRun,
      function: name,
      explanation,
      caller,
      hops,
      fault,
      ops: opsViews,
      memory,
      tracefs,
      failedChecks,
      dmesg,
    };
  });
  return snap!;
}
