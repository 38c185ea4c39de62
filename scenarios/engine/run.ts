// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Runs a scenario on a freshly booted kernel: each step drives the ftrace
 * control plane or runs guest code; after every guest run the new trace
 * events are checked (%rdx and pt_regs); `expect` steps compare what guest
 * memory shows with what the scenario says.
 */
import { initDisassembler } from '../../asm/disasm.js';
import { GuestFault, hex } from '../../emu/index.js';
import { FtraceBugError } from '../../kernel-model/ftrace/arch.js';
import { boot } from '../../kernel-model/boot.js';
import type { Ftrace, FtraceResult } from '../../kernel-model/ftrace/core.js';
import type { FtraceOps } from '../../kernel-model/ftrace/ops.js';
import type { Kernel } from '../../kernel-model/kernel.js';
import { TraceBuffer } from '../../kernel-model/trace/ring-buffer.js';
import { Smp } from '../../kernel-model/smp/scheduler.js';
import { defaultArgs, measureTracedCall, runWorkload } from '../../kernel-model/workloads/workloads.js';
import { ScenarioError } from './load.js';
import { checkEvents, currentRules, type EventRules, type KnownCall } from '../../kernel-model/trace/check-events.js';
import { evaluateExpectation, type CheckContext } from './expectations.js';
import type { Arg, Scenario, ScenarioConfig, Step } from './types.js';

export interface Check {
  name: string;
  passed: boolean;
  detail: string;
}

export interface ScenarioResult {
  name: string;
  file: string;
  description: string;
  passed: boolean;
  checks: Check[];
  callbacks: {
    invocations: number;
    rdxMismatches: number;
    byOps: Record<string, { address: string; invocations: number }>;
  };
  instructionsPerTracedCall: Record<string, number>;
  warnings: string[];
  fault: Record<string, unknown> | null;
}

function stepName(i: number, s: Step): string {
  const what =
    'ops' in s && typeof s.ops === 'string' ? ` ${s.ops}` : 'function' in s ? ` ${s.function}` : s.kind === 'run' ? ` ${s.workload}` : '';
  return `steps[${i}] ${s.kind}${what}`;
}

/** Names in the scenario that must exist in the booted kernel: bad input, not a failed check. */
function checkReferences(s: Scenario, kernel: Kernel, ftrace: Ftrace): void {
  const fail = (where: Step['where'], reason: string): never => {
    throw new ScenarioError(where, reason);
  };
  for (const step of s.steps) {
    if (step.kind === 'call' || step.kind === 'measure') {
      if (!kernel.symbols.get(step.function)) fail(step.where, `unknown function '${step.function}'`);
      if (step.kind === 'measure' && !ftrace.recordOf(step.function)) fail(step.where, `'${step.function}' has no fentry call site to measure`);
      for (const a of step.args ?? []) {
        if (typeof a === 'string' && !kernel.symbols.get(a.slice(1))) fail(step.where, `unknown symbol in argument '${a}'`);
      }
    }
    if ((step.kind === 'corrupt' || step.kind === 'preempt') && !kernel.symbols.get(step.at)) fail(step.where, `unknown symbol '${step.at}'`);
    if (step.kind === 'expect' && step.expect.callsite) {
      for (const fn of Object.keys(step.expect.callsite)) {
        if (!kernel.symbols.get(fn)) fail({ ...step.where, key: `${step.where.key}.callsite.${fn}` }, `unknown function '${fn}'`);
        if (!ftrace.recordOf(fn)) fail({ ...step.where, key: `${step.where.key}.callsite.${fn}` }, `'${fn}' has no fentry call site`);
      }
    }
  }
}

function resolveArgs(kernel: Kernel, fn: string, args: readonly Arg[] | undefined): bigint[] {
  if (!args) return defaultArgs(kernel, fn);
  return args.map((a) => (typeof a === 'string' ? kernel.sym(a.slice(1)) : a));
}

interface RunState extends CheckContext {
  trace: TraceBuffer;
  ops: Map<string, FtraceOps>;
  checks: Check[];
  checkedUpTo: bigint;
  lastTrampoline: Map<string, bigint>;
  instructions: Record<string, number>;
  variantRun: boolean;
  /** With config.cpus > 1: the scheduler that runs workloads on CPUs 1.. */
  smp: Smp | undefined;
}

/** What each ops traced at one moment, for events another CPU wrote while a step changed it. */
type OpsSnapshot = Map<FtraceOps, { registered: boolean; filter: Set<bigint>; notrace: Set<bigint> }>;

function snapshotOps(st: RunState): OpsSnapshot {
  return new Map([...st.ops.values()].map((o) => [o, { registered: o.hasFlag('ENABLED'), filter: new Set(o.filter), notrace: new Set(o.notrace) }]));
}

/** Rules under which an event is right if it was right before the step or after it. */
function windowRules(before: OpsSnapshot, after: OpsSnapshot): EventRules {
  const byAddr = new Map<bigint, FtraceOps>();
  for (const snap of [before, after]) for (const [o, x] of snap) if (x.registered) byAddr.set(o.addr, o);
  const traces = (snap: OpsSnapshot, o: FtraceOps, ip: bigint) => {
    const x = snap.get(o);
    return !!x && x.registered && (x.filter.size === 0 || x.filter.has(ip)) && !x.notrace.has(ip);
  };
  return { opsAt: (a) => byAddr.get(a), traced: (o, ip) => traces(before, o, ip) || traces(after, o, ip) };
}

/** Lets the other CPUs run a little, then checks what every CPU wrote since the step began. */
function checkOtherCpus(st: RunState, before: OpsSnapshot): void {
  const smp = st.smp!;
  smp.run(2);
  smp.quiesce(); // no CPU is half-way through an event
  const { events, lost } = st.trace.read(st.checkedUpTo);
  st.checkedUpTo = st.trace.written;
  st.events.checked += events.length;
  st.events.lost += lost;
  const { rdx, regs, regsChecked } = checkEvents(st.ftrace, events, windowRules(before, snapshotOps(st)));
  st.events.regsChecked += regsChecked;
  st.events.rdxProblems.push(...rdx);
  st.events.regsProblems.push(...regs);
}

function opsOf(st: RunState, name: string): FtraceOps {
  return st.ops.get(name)!;
}

/** Checks the events the last guest run wrote. */
function checkNewEvents(st: RunState, known: KnownCall | undefined): void {
  if (st.smp) return; // checked after the step, over the step's window
  const { events, lost } = st.trace.read(st.checkedUpTo);
  st.checkedUpTo = st.trace.written;
  st.events.checked += events.length;
  st.events.lost += lost;
  const { rdx, regs, regsChecked } = checkEvents(st.ftrace, events, currentRules(st.ftrace, known));
  st.events.regsChecked += regsChecked;
  st.events.rdxProblems.push(...rdx);
  st.events.regsProblems.push(...regs);
}

function noteTrampolines(st: RunState): void {
  for (const [n, o] of st.ops) if (o.trampoline !== 0n) st.lastTrampoline.set(n, o.trampoline);
}

function resultCheck(name: string, r: FtraceResult, expectError: string | undefined): Check {
  if (expectError) {
    if (r.ok) return { name, passed: false, detail: `expected ${expectError}, but it succeeded` };
    return { name, passed: r.errno === expectError, detail: `returned ${r.code} (${r.errno}): ${r.message}` };
  }
  return r.ok ? { name, passed: true, detail: 'ok' } : { name, passed: false, detail: `returned ${r.code} (${r.errno}): ${r.message}` };
}

function executeStep(st: RunState, i: number, step: Step): void {
  const { kernel, ftrace } = st;
  const name = stepName(i, step);
  const ftraceCall = (r: FtraceResult) => {
    const c = resultCheck(name, r, step.expectError);
    if (!c.passed || step.expectError) st.checks.push(c);
  };
  switch (step.kind) {
    case 'set_filter':
      return ftraceCall(ftrace.ftrace_set_filter(opsOf(st, step.ops), step.patterns, step.reset));
    case 'set_notrace':
      return ftraceCall(ftrace.ftrace_set_notrace(opsOf(st, step.ops), step.patterns, step.reset));
    case 'register':
      ftraceCall(ftrace.register_ftrace_function(opsOf(st, step.ops)));
      return noteTrampolines(st);
    case 'unregister':
      noteTrampolines(st);
      return ftraceCall(ftrace.unregister_ftrace_function(opsOf(st, step.ops)));
    case 'destroy': {
      noteTrampolines(st);
      const r = ftrace.destroyOps(opsOf(st, step.ops));
      if (r.ok) st.ops.delete(step.ops);
      return ftraceCall(r);
    }
    case 'reset_counters':
      for (const n of step.ops) st.ops.get(n)?.resetInvocations();
      return;
    case 'preempt': {
      const smp = st.smp!;
      const at = kernel.sym(step.at);
      if (!smp.runUntil(step.cpu, (rip) => rip === at, 200_000)) {
        st.checks.push({ name, passed: false, detail: `CPU ${step.cpu} never reached ${step.at}` });
        return;
      }
      const task = smp.current(step.cpu)!;
      const preempted = smp.preempt(step.cpu);
      const detail = preempted
        ? `task ${task.pid} preempted at ${step.at}; now running: ${smp.current(step.cpu)!.pid}`
        : `task ${task.pid} at ${step.at} not preempted: preempt count ${smp.preemptCount(step.cpu)}`;
      st.checks.push({ name, passed: preempted === (step.expect === 'preempted'), detail });
      return;
    }
    case 'corrupt':
      if (step.beforeBoot) return; // written before ftrace_init()
      kernel.machine.textPoke(kernel.sym(step.at) + BigInt(step.offset), Uint8Array.from(step.bytes));
      return;
    case 'call': {
      const args = resolveArgs(kernel, step.function, step.args);
      const known = step.args && args.length > 0 ? { ip: kernel.sym(step.function), arg0: args[0]! } : undefined;
      for (let k = 0; k < step.times; k++) {
        kernel.call(step.function, args);
        checkNewEvents(st, known);
      }
      return;
    }
    case 'run':
      runWorkload(kernel, step.workload, step.iterations);
      return checkNewEvents(st, undefined);
    case 'measure': {
      const args = resolveArgs(kernel, step.function, step.args);
      st.instructions[step.label] = measureTracedCall(kernel, ftrace, step.function, args);
      return checkNewEvents(st, undefined);
    }
    case 'expect':
      for (const o of evaluateExpectation(st, step.expect, st.variantRun)) st.checks.push({ name: `${name}: ${o.what}`, passed: o.passed, detail: o.detail });
      return;
  }
}

/** What a caller may look at while the scenario's kernel is still up. */
export interface Inspection {
  kernel: Kernel;
  ftrace: Ftrace;
  ops: ReadonlyMap<string, FtraceOps>;
  /** Steps that ran (all of them unless a step faulted or `untilStep` stopped earlier). */
  stepsRun: number;
  failedChecks: Check[];
}

interface RunOptions {
  variantRun: boolean;
  /** Run steps 0..untilStep only. */
  untilStep?: number;
  /** Called before the kernel is closed. */
  inspect?: (i: Inspection) => void | Promise<void>;
}

async function runOnce(s: Scenario, config: ScenarioConfig, opts: RunOptions): Promise<{ st: RunState; fault: GuestFault | FtraceBugError | undefined }> {
  const variantRun = opts.variantRun;
  await initDisassembler();
  const early = s.steps.flatMap((x) => (x.kind === 'corrupt' && x.beforeBoot ? [x] : []));
  const { kernel, ftrace } = await boot(config, {
    beforeFtraceInit: (k) => {
      for (const c of early) {
        const at = k.symbols.get(c.at);
        if (!at) throw new ScenarioError(c.where, `unknown symbol '${c.at}'`);
        k.machine.textPoke(at.address + BigInt(c.offset), Uint8Array.from(c.bytes));
      }
    },
  });
  const st: RunState = {
    kernel,
    ftrace,
    trace: new TraceBuffer(kernel),
    ops: new Map(),
    checks: [],
    checkedUpTo: 0n,
    events: { rdxProblems: [], regsProblems: [], checked: 0, regsChecked: 0, lost: 0 },
    lastTrampoline: new Map(),
    instructions: {},
    variantRun,
    smp: undefined,
  };
  let fault: GuestFault | FtraceBugError | undefined;
  try {
    checkReferences(s, kernel, ftrace);
    for (const o of s.ops) st.ops.set(o.name, ftrace.createOps({ name: o.name, callback: o.callback, flags: o.flags, dynamic: o.dynamic }));
    if (kernel.config.cpus > 1) {
      // The other CPUs run workloads, restarted as they return, and run at
      // every synchronisation of the patching protocol.
      const smp = new Smp({ kernel, ftrace }, { seed: config.seed ?? 1, quantum: [5, 150], quantaPerSync: 1 });
      // With preemption, two tasks per CPU, so that a preempted task has another to give way to.
      for (let c = 1; c < kernel.config.cpus; c++) {
        for (let k = 0; k < (kernel.config.preempt ? 2 : 1); k++) {
          const ubuf = kernel.userBuffer + BigInt((c * 2 + k) * 0x1000);
          smp.start(c, c % 2 ? { fn: 'sim_workload_syscalls', args: [4n, ubuf] } : { fn: 'sim_workload_callgraph', args: [3n, BigInt(c)] });
        }
      }
      smp.attach();
      st.smp = smp;
    }
    const last = Math.min(opts.untilStep ?? s.steps.length - 1, s.steps.length - 1);
    let i = 0;
    for (; i <= last; i++) {
      const step = s.steps[i]!;
      try {
        const before = st.smp ? snapshotOps(st) : undefined;
        executeStep(st, i, step);
        if (before) checkOtherCpus(st, before);
      } catch (e) {
        if (!(e instanceof GuestFault) && !(e instanceof FtraceBugError)) throw e;
        fault = e;
        st.checks.push({ name: `${stepName(i, step)} (line ${step.where.line})`, passed: false, detail: e instanceof GuestFault ? e.report() : e.message });
        break; // the machine is in no state to go on
      }
    }
    for (const f of st.smp?.faults ?? []) st.checks.push({ name: `CPU ${f.cpu} (task ${f.task})`, passed: false, detail: f.fault.message });
    st.smp?.detach();
    await opts.inspect?.({ kernel, ftrace, ops: st.ops, stepsRun: i, failedChecks: st.checks.filter((c) => !c.passed) });
    return { st, fault };
  } finally {
    kernel.close();
  }
}

export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const { st, fault } = await runOnce(s, s.config, { variantRun: false });
  const instructions = { ...st.instructions };
  const checks = st.checks;
  if (s.variant && !fault) {
    const v = s.variant;
    const { st: vs, fault: vf } = await runOnce(s, { ...s.config, ...v.config }, { variantRun: true });
    for (const c of vs.checks) checks.push({ ...c, name: `[${v.name}] ${c.name}` });
    if (!vf) {
      for (const [label, n] of Object.entries(vs.instructions)) instructions[`${label} [${v.name}]`] = n;
      for (const label of v.fewerInstructions) {
        const a = st.instructions[label];
        const b = vs.instructions[label];
        checks.push({
          name: `${label}: fewer instructions than [${v.name}]`,
          passed: a !== undefined && b !== undefined && a < b,
          detail: `${a} guest instructions per traced call, against ${b} in ${v.name} (${JSON.stringify(v.config)})`,
        });
      }
    }
  }
  const byOps: ScenarioResult['callbacks']['byOps'] = {};
  let total = 0;
  for (const [n, o] of st.ops) {
    const inv = Number(o.invocations);
    total += inv;
    byOps[n] = { address: hex(o.addr), invocations: inv };
  }
  return {
    name: s.name,
    file: s.file,
    description: s.description,
    passed: checks.every((c) => c.passed) && !fault,
    checks,
    callbacks: { invocations: total, rdxMismatches: st.events.rdxProblems.length, byOps },
    instructionsPerTracedCall: instructions,
    warnings: [...st.kernel.dmesg],
    fault: fault instanceof GuestFault ? fault.toJSON() : fault ? { kind: 'ftrace_bug', message: fault.message } : null,
  };
}

/**
 * Runs a scenario up to and including step `untilStep` (all steps when
 * undefined) and hands the live kernel to `inspect` before closing it.
 */
export async function inspectScenario(s: Scenario, untilStep: number | undefined, inspect: (i: Inspection) => void | Promise<void>): Promise<void> {
  if (untilStep !== undefined && (untilStep < 0 || untilStep >= s.steps.length)) {
    throw new ScenarioError({ file: s.file, line: 1, key: 'steps' }, `step ${untilStep} does not exist: the scenario has steps 0 to ${s.steps.length - 1}`);
  }
  await runOnce(s, s.config, { variantRun: false, ...(untilStep !== undefined ? { untilStep } : {}), inspect });
}
