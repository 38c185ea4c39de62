// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The checks behind an `expect` step: one small function per kind of
 * expectation, each comparing what the scenario says with what guest memory
 * (or the guest's own records of callback invocations) shows.
 */
import { hex } from '../../emu/index.js';
import { siteTargetLabel, type Ftrace } from '../../kernel-model/ftrace/core.js';
import type { FtraceOps } from '../../kernel-model/ftrace/ops.js';
import type { Kernel } from '../../kernel-model/kernel.js';
import type { EventProblem } from '../../kernel-model/trace/check-events.js';
import type { CountExpectation, Expectation } from './types.js';
import { TraceBuffer } from '../../kernel-model/trace/ring-buffer.js';
import { buildForest, checkReturns, formatTree, lastCallOf, staticCallTree, treeDifference, type CallNode, type StaticNode } from '../../kernel-model/trace/graph-tree.js';

/** What the checked invocations showed so far: problems found, events read and lost. */
export interface EventLedger {
  rdxProblems: EventProblem[];
  regsProblems: EventProblem[];
  checked: number;
  /** How many of the checked invocations were of a SAVE_REGS callback. */
  regsChecked: number;
  lost: number;
}

export interface CheckContext {
  kernel: Kernel;
  ftrace: Ftrace;
  ops: ReadonlyMap<string, FtraceOps>;
  events: EventLedger;
  /** The last trampoline address each ops had (kept after it is freed). */
  lastTrampoline: ReadonlyMap<string, bigint>;
}

export interface Outcome {
  what: string;
  passed: boolean;
  detail: string;
}

export function compare(actual: bigint, c: CountExpectation): boolean {
  switch (c.op) {
    case '==':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    case '>':
      return actual > c.value;
    case '>=':
      return actual >= c.value;
    case '<':
      return actual < c.value;
    case '<=':
      return actual <= c.value;
  }
}

export function countText(c: CountExpectation): string {
  return c.op === '==' ? String(c.value) : `${c.op}${c.value}`;
}

type Wanted = Required<Expectation>;
type Checker<K extends keyof Wanted> = (ctx: CheckContext, want: Wanted[K]) => Outcome[];

interface CheckerEntry<K extends keyof Wanted> {
  /**
   * Whether a variant run (the same steps on another configuration) checks
   * it too: only what must not depend on the configuration.
   */
  inVariant: boolean;
  check: Checker<K>;
}

/** `__fentry__` and `mcount` both name the compiler's own call: the one a kernel has depends on how it was built. */
const PROFILE_HOOKS = ['__fentry__', 'mcount'];

const callsite: Checker<'callsite'> = ({ ftrace }, want) =>
  Object.entries(want).map(([fn, label]) => {
    const got = siteTargetLabel(ftrace.siteTarget(ftrace.recordOf(fn)!));
    const passed = got === label || (PROFILE_HOOKS.includes(label) && PROFILE_HOOKS.includes(got));
    return { what: `callsite ${fn}`, passed, detail: `expected ${label}, guest memory holds ${got}` };
  });

const invocations: Checker<'invocations'> = ({ ops }, want) =>
  Object.entries(want).map(([n, c]) => {
    const got = ops.get(n)?.invocations ?? 0n;
    return { what: `invocations ${n}`, passed: compare(got, c), detail: `expected ${countText(c)}, guest counted ${got}` };
  });

const rdx: Checker<'rdx'> = ({ events }) => {
  const bad = events.rdxProblems;
  const first = bad[0];
  const detail = first
    ? `${bad.length} of ${events.checked} invocations got a wrong %rdx; first: event ${first.seq} in ${first.function}: ${first.problem}`
    : events.checked > 0
      ? `all ${events.checked} invocations got their own ops in %rdx${events.lost ? ` (${events.lost} overwritten before they were read)` : ''}`
      : 'no callback invocation has been recorded yet';
  return [{ what: 'rdx', passed: bad.length === 0 && events.checked > 0, detail }];
};

const regs: Checker<'regs'> = ({ events }) => {
  const bad = events.regsProblems;
  const first = bad[0];
  const detail = first
    ? `${bad.length} bad pt_regs; first: event ${first.seq} in ${first.function}: ${first.problem}`
    : events.regsChecked > 0
      ? `all ${events.regsChecked} SAVE_REGS invocations got a pt_regs matching the traced call`
      : 'no SAVE_REGS callback invocation has been recorded yet';
  // Like rdx: a check that saw nothing has shown nothing.
  return [{ what: 'regs', passed: bad.length === 0 && events.regsChecked > 0, detail }];
};

const trampolines: Checker<'trampolines'> = ({ ftrace, ops, lastTrampoline }, want) =>
  Object.entries(want).map(([n, t]) => {
    const what = `trampoline ${n}`;
    const o = ops.get(n);
    const addr = o?.trampoline ?? 0n;
    switch (t.kind) {
      case 'none':
        return { what, passed: addr === 0n, detail: addr === 0n ? 'none' : `has one at ${hex(addr)}` };
      case 'allocated': {
        const problems = o && addr !== 0n ? ftrace.arch.checkTrampoline(o) : ['none allocated'];
        const detail = problems.length ? problems.join('; ') : `at ${hex(addr)}, ${o!.trampolineSize} bytes, checked byte by byte`;
        return { what, passed: problems.length === 0, detail };
      }
      case 'reuses': {
        const prev = lastTrampoline.get(t.ops);
        const other = ops.get(t.ops);
        const passed = addr !== 0n && prev === addr && (!other || other.trampoline !== addr);
        return { what, passed, detail: `at ${addr ? hex(addr) : 'none'}; ${t.ops}'s freed trampoline was at ${prev !== undefined ? hex(prev) : 'none'}` };
      }
    }
  });

const ftraceCall: Checker<'ftraceCall'> = ({ kernel, ftrace, ops }, want) => {
  const target = ftrace.arch.ftraceCallTarget();
  const got = target !== undefined ? (kernel.symbols.format(target, { short: true }) ?? hex(target)) : 'nothing';
  const o = ops.get(want);
  if (!o) return [{ what: 'ftrace_call', passed: got === want, detail: `expected ${want}, ftrace_call calls ${got}` }];
  const passed = target === ftrace.ftrace_ops_get_func(o) && kernel.memory.readU64(kernel.sym('function_trace_op')) === o.addr;
  return [{ what: 'ftrace_call', passed, detail: `expected ${o.name}'s func (ftrace_ops_get_func) with function_trace_op = ${o.name}; ftrace_call calls ${got}` }];
};

const moduleBytes: Checker<'moduleBytes'> = ({ kernel }, want) => {
  const used = BigInt(kernel.moduleSpace?.bytesInUse ?? 0);
  return [{ what: 'module_bytes', passed: compare(used, want), detail: `expected ${countText(want)}, module space has ${used} bytes in use` }];
};

const int3Hits: Checker<'int3Hits'> = ({ ftrace }, want) => {
  const hits = BigInt(ftrace.arch.int3Hits);
  return [{ what: 'int3_hits', passed: compare(hits, want), detail: `expected ${countText(want)}, CPUs hit a patching int3 ${hits} times` }];
};

const warnings: Checker<'warnings'> = ({ kernel }, want) => {
  const log = kernel.dmesg;
  if ('none' in want) return [{ what: 'warnings', passed: log.length === 0, detail: log.length ? log.join(' | ') : 'none' }];
  const passed = log.some((l) => l.includes(want.contains));
  return [{ what: 'warnings', passed, detail: log.length ? log.join(' | ') : `no warning; expected one containing '${want.contains}'` }];
};

function graphForest(kernel: Kernel) {
  return buildForest(kernel, new TraceBuffer(kernel).read(0n).events);
}

const graph: Checker<'graph'> = ({ kernel, ftrace }, want) => {
  const forest = graphForest(kernel);
  const root = want.kind === 'tree' ? want.tree.func : want.root;
  const what = `graph ${want.kind === 'tree' ? want.text : `static(${root})`}`;
  const got = lastCallOf(forest, root);
  if (!got) return [{ what, passed: false, detail: `no completed call of ${root} in the function_graph events` }];
  let expected: StaticNode;
  if (want.kind === 'tree') expected = want.tree;
  else {
    const g = ftrace.graph;
    const ops = g.ops;
    const traced = (func: string) => {
      const rec = ftrace.recordOf(func);
      return !!rec && (!ops || ops.tracesIp(rec.ip)) && !g.notrace.has(rec.ip);
    };
    const max = g.maxDepth;
    expected = staticCallTree(kernel, root, traced, max > 0 ? Math.max(max - got.depth, 1) : 0);
  }
  const diff = treeDifference(got, expected);
  return [{ what, passed: diff === undefined, detail: diff ?? `the last call of ${root} (depth ${got.depth}, CPU ${got.cpu}) was ${formatTree(got)}` }];
};

const returns: Checker<'returns'> = ({ kernel }) => {
  const forest = graphForest(kernel);
  const problems = checkReturns(kernel, forest);
  let count = 0;
  const walk = (n: CallNode) => {
    if (n.returnedTo !== undefined) count++;
    n.children.forEach(walk);
  };
  forest.roots.forEach(walk);
  const depth = kernel.tasks.currRetStack(kernel.tasks.current(0));
  if (depth !== -1) problems.push(`the return stack of the current task is not empty: curr_ret_stack = ${depth}`);
  if (forest.orphanReturns.length) problems.push(`${forest.orphanReturns.length} return event(s) without their entry`);
  const detail = problems.length ? `${problems.length} problem(s); first: ${problems[0]}` : `all ${count} traced returns went back to the caller their call came from; ret_stack empty`;
  return [{ what: 'returns', passed: problems.length === 0 && count > 0, detail: count === 0 && !problems.length ? 'no traced return recorded' : detail }];
};

/** Every kind of expectation, in the order an `expect` step reports them. */
type CheckerTable = { [K in keyof Wanted]: CheckerEntry<K> };
export const CHECKERS: CheckerTable = {
  callsite: { inVariant: false, check: callsite },
  invocations: { inVariant: true, check: invocations },
  rdx: { inVariant: true, check: rdx },
  regs: { inVariant: true, check: regs },
  trampolines: { inVariant: false, check: trampolines },
  ftraceCall: { inVariant: false, check: ftraceCall },
  moduleBytes: { inVariant: false, check: moduleBytes },
  int3Hits: { inVariant: false, check: int3Hits },
  warnings: { inVariant: false, check: warnings },
  graph: { inVariant: true, check: graph },
  returns: { inVariant: true, check: returns },
};

function run<K extends keyof Wanted>(kind: K, ctx: CheckContext, e: Expectation, variantRun: boolean): Outcome[] {
  // Expectation[K] is Wanted[K] | undefined; TypeScript cannot see that for a generic K.
  const want = e[kind] as Wanted[K] | undefined;
  const entry = CHECKERS[kind];
  if (want === undefined || (variantRun && !entry.inVariant)) return [];
  return entry.check(ctx, want);
}

/** The outcomes of one `expect` step. */
export function evaluateExpectation(ctx: CheckContext, e: Expectation, variantRun: boolean): Outcome[] {
  return (Object.keys(CHECKERS) as (keyof Wanted)[]).flatMap((k) => run(k, ctx, e, variantRun));
}
