// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Runs a scenario on a freshly booted kernel: each step drives the ftrace
 * control plane or runs guest code; after every guest run the new trace
 * events are checked (%rdx and pt_regs); `expect` steps compare what guest
 * memory shows with what the scenario says.
 */
import { initDisassembler } from '../../asm/disasm.js';
import { GuestFault, hex } from '../../emu/index.js';
import { KernelDataCorrupted } from '../../kernel-model/corruption.js';
import { boot } from '../../kernel-model/boot.js';
import { siteTargetLabel, type Ftrace, type FtraceResult } from '../../kernel-model/ftrace/core.js';
import type { FtraceOps } from '../../kernel-model/ftrace/ops.js';
import { eraRules } from '../../kernel-model/ftrace/era.js';
import type { CallSites, Era, Kernel, KernelConfig } from '../../kernel-model/kernel.js';
import type { GraphSettings } from '../../kernel-model/ftrace/fgraph.js';
import { TraceBuffer } from '../../kernel-model/trace/ring-buffer.js';
import { Smp, type Task } from '../../kernel-model/smp/scheduler.js';
import { defaultArgs, measureTracedCall, runWorkload } from '../../kernel-model/workloads/workloads.js';
import { ScenarioError } from './load.js';
import { checkReferences } from './references.js';
import { checkEvents, currentRules, snapshotOps, tracedIn, type EventRules, type KnownCall, type OpsState } from '../../kernel-model/trace/check-events.js';
import { evaluateExpectation, type CheckContext } from './expectations.js';
import type { Arg, Scenario, ScenarioConfig, Step } from './types.js';

export interface Check {
  name: string;
  passed: boolean;
  detail: string;
  /** The scenario file's line of the step that made the check. */
  line?: number;
}

export interface ScenarioResult {
  name: string;
  file: string;
  description: string;
  /** The kernel it ran on. */
  era: Era;
  callsites: CallSites;
  /** Why it did not run on that kernel (one the scenario does not describe); passed is then true. */
  skipped?: string;
  passed: boolean;
  checks: Check[];
  callbacks: {
    invocations: number;
    rdxMismatches: number;
    byOps: Record<string, { address: string; invocations: number }>;
  };
  instructionsPerTracedCall: Record<string, number>;
  /** Each measure step: what the function's call site called then, and what one traced call cost. */
  measurements: Measurement[];
  /** When the last step had run: trampolines still allocated, module space in use. */
  end: { trampolines: number; moduleBytes: number };
  warnings: string[];
  fault: Record<string, unknown> | null;
  /** A step ran out of its wall-clock budget: not a fault of the guest, and not a failed check. */
  budgetExceeded: boolean;
}

export interface Measurement {
  label: string;
  function: string;
  /** The call site's target, as an expect step names it (trampoline(tracer), ftrace_caller, ...). */
  target: string;
  /** The trampoline's size in bytes, when the site calls one. */
  trampolineSize: number | undefined;
  /** What that caller's or trampoline's own call calls (ops->func, the list function...). */
  via: string | undefined;
  instructions: number;
}

/** Why a scenario does not run on a kernel, or undefined when it does. */
export function skipReason(s: Scenario, era: Era, callsites: CallSites): string | undefined {
  if (!s.eras.includes(era)) return `describes ${s.eras.join(', ')}, not ${era}`;
  if (callsites === 'mcount' && !eraRules(era).mcount) return `a ${eraRules(era).version} kernel has no mcount call sites`;
  return undefined;
}

/**
 * What stops a scenario: the machine or the kernel's data is in no state to
 * go on. (An ftrace_bug() is not one: ftrace reports it and disables itself,
 * and the scenario's checks see the kernel it leaves.)
 */
type Stop = GuestFault | KernelDataCorrupted;

function stopDetail(e: Stop): string {
  if (e instanceof GuestFault && e.kind === 'timeout') {
    return `budget exceeded: the guest ran past its wall-clock budget (${e.note}) in ${e.symbol ?? hex(e.rip)}; a step asked for more work than the budget allows, or the guest loops`;
  }
  return e instanceof GuestFault ? e.report() : e.message;
}

function stepName(i: number, s: Step): string {
  const what =
    'ops' in s ? ` ${s.ops.toString()}` : 'function' in s ? ` ${s.function}` : s.kind === 'run' ? ` ${s.workload}` : '';
  return `steps[${i}] ${s.kind}${what}`;
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
  measurements: Measurement[];
  end: ScenarioResult['end'];
  variantRun: boolean;
  graphSettings: Map<string, GraphSettings>;
  /** With config.cpus > 1: the scheduler that runs workloads on CPUs 1.. */
  smp: Smp | undefined;
}

/** What each ops traced at one moment, for events another CPU wrote while a step changed it. */
type OpsSnapshot = Map<bigint, OpsState>;

/** Rules under which an event is right if it was right before the step or after it. */
function windowRules(st: RunState, before: OpsSnapshot, after: OpsSnapshot): EventRules {
  const byAddr = new Map<bigint, FtraceOps>();
  for (const o of st.ops.values()) if (before.get(o.addr)?.registered || after.get(o.addr)?.registered) byAddr.set(o.addr, o);
  return { opsAt: (a) => byAddr.get(a), traced: (o, ip) => tracedIn(before.get(o.addr), ip) || tracedIn(after.get(o.addr), ip) };
}

/**
 * Lets the other CPUs run a little, then checks what every CPU wrote since
 * the step began. After a preempt step they do not run: the task it
 * preempted stays where it was, and off its CPU, for the next step.
 */
function checkOtherCpus(st: RunState, before: OpsSnapshot, step: Step): void {
  const smp = st.smp!;
  if (step.kind !== 'preempt') {
    smp.release();
    smp.run(2);
  }
  smp.quiesce(); // no CPU is half-way through an event
  checkEventsSince(st, windowRules(st, before, snapshotOps(st.ops.values())));
}

function opsOf(st: RunState, name: string): FtraceOps {
  return st.ops.get(name)!;
}

/** Checks the events the last guest run wrote. */
function checkNewEvents(st: RunState, known: KnownCall | undefined): void {
  if (st.smp) return; // checked after the step, over the step's window
  checkEventsSince(st, currentRules(st.ftrace, known));
}

/** Checks, under `rules`, the events written since the last check, and counts them. */
function checkEventsSince(st: RunState, rules: EventRules): void {
  const { events, lost } = st.trace.read(st.checkedUpTo);
  st.checkedUpTo = st.trace.written;
  st.events.checked += events.length;
  st.events.lost += lost;
  const { rdx, regs, regsChecked } = checkEvents(st.ftrace, events, rules);
  st.events.regsChecked += regsChecked;
  st.events.rdxProblems.push(...rdx);
  st.events.regsProblems.push(...regs);
}

/** [start, end) of an ops' trampoline, if it has one. */
function trampolineRange(ops: FtraceOps): [bigint, bigint] | undefined {
  return ops.trampoline === 0n ? undefined : [ops.trampoline, ops.trampoline + BigInt(ops.trampolineSize)];
}

/**
 * The tasks inside [start, end), running or switched out: their %rip is
 * there, or a return address into it is on their stack (a task preempted
 * in the callback a trampoline called must still return through it).
 */
function tasksIn(kernel: Kernel, smp: Smp, [start, end]: [bigint, bigint]): Task[] {
  const within = (a: bigint) => a >= start && a < end;
  return smp.allTasks().filter((t) => {
    const at = smp.where(t);
    if (!at) return false;
    if (within(at.rip)) return true;
    const stack = kernel.memory.read(at.rsp, Number(t.stackTop - at.rsp));
    const view = new DataView(stack.buffer, stack.byteOffset, stack.byteLength);
    for (let off = 0; off + 8 <= stack.length; off += 8) if (within(view.getBigUint64(off, true))) return true;
    return false;
  });
}

function noteTrampolines(st: RunState): void {
  for (const [n, o] of st.ops) if (o.trampoline !== 0n) st.lastTrampoline.set(n, o.trampoline);
}

/** The check a call into ftrace makes: one that failed, or any with an expected error. */
function resultCheck(name: string, r: FtraceResult, expectError: string | undefined): Check | undefined {
  if (expectError) {
    if (r.ok) return { name, passed: false, detail: `expected ${expectError}, but it succeeded` };
    return { name, passed: r.errno === expectError, detail: `returned ${r.code} (${r.errno}): ${r.message}` };
  }
  return r.ok ? undefined : { name, passed: false, detail: `returned ${r.code} (${r.errno}): ${r.message}` };
}

/** What a step leaves for the next: 'stop' when the steps after it cannot run. */
type StepOutcome = 'stop' | undefined;

function executeStep(st: RunState, i: number, step: Step): StepOutcome {
  const { kernel, ftrace } = st;
  const name = stepName(i, step);
  const ftraceCall = (r: FtraceResult): undefined => {
    const c = resultCheck(name, r, step.expectError);
    if (c) st.checks.push(c);
  };
  switch (step.kind) {
    case 'set_filter':
      return ftraceCall(ftrace.ftrace_set_filter(opsOf(st, step.ops), step.patterns, step.reset));
    case 'set_notrace':
      return ftraceCall(ftrace.ftrace_set_notrace(opsOf(st, step.ops), step.patterns, step.reset));
    case 'register': {
      const ops = opsOf(st, step.ops);
      if (ops.callback === 'function_graph') {
        // Its own set_graph_function and friends first (configure({}) changes nothing).
        const c = ftrace.graph.configure(st.graphSettings.get(step.ops) ?? {});
        ftraceCall(c.ok ? ftrace.graph.register(ops) : c);
      } else ftraceCall(ftrace.register_ftrace_function(ops));
      noteTrampolines(st);
      return;
    }
    case 'unregister': {
      noteTrampolines(st);
      const ops = opsOf(st, step.ops);
      const range = trampolineRange(ops);
      const inside = range && st.smp ? tasksIn(kernel, st.smp, range) : [];
      ftraceCall(ops.callback === 'function_graph' ? ftrace.graph.unregister(ops) : ftrace.unregister_ftrace_function(ops));
      // A task preempted inside a trampoline that was freed must have left it first.
      if (inside.length && ops.trampoline === 0n) {
        const still = tasksIn(kernel, st.smp!, range!);
        const who = inside.map((t) => `task ${t.pid}`).join(', ');
        const wait = kernel.config.trampolineSync === 'rcu_tasks' ? 'synchronize_rcu_tasks()' : kernel.config.trampolineSync;
        st.checks.push({
          name: `${name}: its trampoline freed after ${wait}`,
          passed: still.length === 0,
          detail: still.length
            ? `${still.map((t) => `task ${t.pid}`).join(', ')} still inside the freed trampoline at ${hex(range![0])}`
            : `${who}, inside it at the unregister, had left it when it was freed`,
        });
      }
      return;
    }
    case 'destroy': {
      noteTrampolines(st);
      const r = ftrace.destroyOps(opsOf(st, step.ops));
      ftraceCall(r);
      if (!r.ok) return;
      st.ops.delete(step.ops);
      if (!step.expectError) return;
      // The loader let later steps name the ops this step was to fail to destroy.
      st.checks.at(-1)!.detail += `; ${step.ops} is gone, so the steps after it do not run`;
      return 'stop';
    }
    case 'set_graph':
      return ftraceCall(ftrace.graph.configure(step.settings));
    case 'reset_counters':
      for (const n of step.ops) opsOf(st, n).resetInvocations();
      return;
    case 'preempt': {
      const smp = st.smp!;
      const range = step.trampolineOf !== undefined ? trampolineRange(opsOf(st, step.trampolineOf)) : undefined;
      if (step.trampolineOf !== undefined && !range) {
        st.checks.push({ name, passed: false, detail: `${step.trampolineOf} has no trampoline to be preempted in` });
        return;
      }
      const at = range ? undefined : kernel.sym(step.at);
      const reached = range ? (rip: bigint) => rip >= range[0] && rip < range[1] : (rip: bigint) => rip === at;
      if (!smp.runUntil(step.cpu, reached, 200_000)) {
        st.checks.push({ name, passed: false, detail: `CPU ${step.cpu} never reached ${step.at}` });
        return;
      }
      const task = smp.current(step.cpu)!;
      // Held off its CPU through the next step, which the step is there for.
      const preempted = smp.preempt(step.cpu, { hold: true });
      const where = range ? (kernel.symbolize(smp.where(task)!.rip) ?? step.at) : step.at;
      const detail = preempted
        ? `task ${task.pid} preempted at ${where}; now running: ${smp.current(step.cpu)!.pid}`
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
      // The ip a callback gets is the call site's: the function's start with fentry, a few bytes in with mcount.
      const rec = ftrace.recordOf(step.function);
      const known = step.args && args.length > 0 && rec ? { ip: rec.ip, arg0: args[0]! } : undefined;
      for (let k = 0; k < step.times; k++) {
        kernel.call(step.function, args);
        checkNewEvents(st, known);
      }
      return;
    }
    case 'run':
      runWorkload(kernel, step.workload, step.iterations);
      checkNewEvents(st, undefined);
      return;
    case 'measure': {
      const args = resolveArgs(kernel, step.function, step.args);
      const t = ftrace.siteTarget(ftrace.recordOf(step.function)!);
      const tramp = t.kind === 'trampoline' ? st.ops.get(t.ops) : undefined;
      const calls =
        t.kind === 'ftrace_caller' || t.kind === 'ftrace_regs_caller' ? ftrace.arch.ftraceCallTarget(t.kind === 'ftrace_regs_caller') : tramp ? ftrace.arch.trampolineCallTarget(tramp) : undefined;
      const via = calls === undefined ? undefined : (kernel.symbolize(calls)?.replace(/\+0x0$/, '') ?? hex(calls));
      const n = measureTracedCall(kernel, ftrace, step.function, args);
      st.instructions[step.label] = n;
      st.measurements.push({ label: step.label, function: step.function, target: siteTargetLabel(t), trampolineSize: tramp?.trampolineSize, via, instructions: n });
      checkNewEvents(st, undefined);
      return;
    }
    case 'expect':
      if (step.only && !step.only.includes(kernel.config.era)) return;
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

/** What a caller adds to a run: more kernel configuration, and work after each step. */
export interface RunHooks {
  /** On top of the scenario's configuration (e.g. more CPUs). */
  kernelConfig?: Partial<KernelConfig>;
  /** Called once the kernel has booted; what it returns is called after every step. */
  onBoot?: (kernel: Kernel, ftrace: Ftrace) => (() => void) | void;
}

interface RunOptions extends RunHooks {
  /** The run of the scenario's variant, whose expectations differ. */
  variantRun?: boolean;
  /** Run steps 0..untilStep only. */
  untilStep?: number | undefined;
  /** Called before the kernel is closed. */
  inspect?: (i: Inspection) => void | Promise<void>;
}

async function runOnce(s: Scenario, config: ScenarioConfig, opts: RunOptions): Promise<{ st: RunState; fault: Stop | undefined }> {
  const variantRun = opts.variantRun ?? false;
  await initDisassembler();
  const early = s.steps.flatMap((x) => (x.kind === 'corrupt' && x.beforeBoot ? [x] : []));
  const { kernel, ftrace } = await boot(
    { ...config, ...opts.kernelConfig },
    {
      beforeFtraceInit: (k) => {
        for (const c of early) k.machine.textPoke(k.sym(c.at) + BigInt(c.offset), Uint8Array.from(c.bytes));
      },
    },
  );
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
    measurements: [],
    end: { trampolines: 0, moduleBytes: 0 },
    variantRun,
    graphSettings: new Map(s.ops.flatMap((o) => (o.graph ? [[o.name, o.graph] as const] : []))),
    smp: undefined,
  };
  let fault: Stop | undefined;
  try {
    const afterStep = opts.onBoot?.(kernel, ftrace);
    for (const o of s.ops) st.ops.set(o.name, ftrace.createOps({ name: o.name, callback: o.callback, flags: o.flags, dynamic: o.dynamic }));
    // A caller that drives the other CPUs itself (onBoot: a recording with
    // --cpus) runs the only scheduler; otherwise the scenario's config.cpus does.
    if (kernel.config.cpus > 1 && !opts.onBoot) {
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
    const last = opts.untilStep ?? s.steps.length - 1; // inspectScenario checked it
    let i = 0;
    for (; i <= last; i++) {
      const step = s.steps[i]!;
      const made = st.checks.length;
      try {
        const before = st.smp ? snapshotOps(st.ops.values()) : undefined;
        const outcome = executeStep(st, i, step);
        afterStep?.();
        if (before) checkOtherCpus(st, before, step);
        if (outcome === 'stop') {
          i++;
          break;
        }
      } catch (e) {
        if (!(e instanceof GuestFault) && !(e instanceof KernelDataCorrupted)) throw e;
        fault = e;
        st.checks.push({ name: `${stepName(i, step)} (line ${step.where.line})`, passed: false, detail: stopDetail(e) });
        break; // the machine is in no state to go on
      } finally {
        for (const c of st.checks.slice(made)) c.line ??= step.where.line;
      }
    }
    for (const f of st.smp?.faults ?? []) st.checks.push({ name: `CPU ${f.cpu} (task ${f.task})`, passed: false, detail: f.fault.message });
    st.smp?.detach();
    st.end = { trampolines: [...st.ops.values()].filter((o) => o.trampoline !== 0n).length, moduleBytes: kernel.moduleSpace?.bytesInUse ?? 0 };
    await opts.inspect?.({ kernel, ftrace, ops: st.ops, stepsRun: i, failedChecks: st.checks.filter((c) => !c.passed) });
    return { st, fault };
  } finally {
    kernel.close();
  }
}

/**
 * Runs a scenario on its own era or on `era`, and its variant if it has one
 * and runs on its own era. The names it uses are checked first
 * (checkReferences), unless the caller has done so for a whole set of files
 * already.
 */
export async function runScenario(s: Scenario, opts: { referencesChecked?: boolean; era?: Era; callsites?: CallSites; variant?: boolean } = {}): Promise<ScenarioResult> {
  const era = opts.era ?? s.config.era;
  const callsites = opts.callsites ?? s.config.callsites;
  const skipped = skipReason(s, era, callsites);
  if (skipped) {
    return { name: s.name, file: s.file, description: s.description, era, callsites, skipped, passed: true, checks: [], callbacks: { invocations: 0, rdxMismatches: 0, byOps: {} }, instructionsPerTracedCall: {}, measurements: [], end: { trampolines: 0, moduleBytes: 0 }, warnings: [], fault: null, budgetExceeded: false };
  }
  if (!opts.referencesChecked) await checkReferences(s, era, callsites);
  const { st, fault } = await runOnce(s, { ...s.config, era, callsites }, {});
  const instructions = { ...st.instructions };
  const checks = st.checks;
  if (s.variant && !fault && era === s.config.era && callsites === s.config.callsites && opts.variant !== false) {
    const v = s.variant;
    const { st: vs, fault: vf } = await runOnce(s, { ...s.config, ...v.config }, { variantRun: true });
    for (const c of vs.checks) checks.push({ ...c, name: `[${v.name}] ${c.name}` });
    if (!vf) {
      for (const [label, n] of Object.entries(vs.instructions)) instructions[`${label} [${v.name}]`] = n;
      for (const label of v.fewerInstructions) {
        // Unmeasured only in a run that stopped before its measure step; that run failed already.
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
    era,
    callsites,
    passed: checks.every((c) => c.passed) && !fault,
    checks,
    callbacks: { invocations: total, rdxMismatches: st.events.rdxProblems.length, byOps },
    instructionsPerTracedCall: instructions,
    measurements: st.measurements,
    end: st.end,
    warnings: [...st.kernel.dmesg],
    fault: fault instanceof GuestFault ? fault.toJSON() : fault ? { kind: 'kernel_data_corrupted', message: fault.message } : null,
    budgetExceeded: fault instanceof GuestFault && fault.kind === 'timeout',
  };
}

/**
 * Runs a scenario up to and including step `untilStep` (all steps when
 * undefined) and hands the live kernel to `inspect` before closing it.
 */
export async function inspectScenario(s: Scenario, untilStep: number | undefined, inspect: (i: Inspection) => void | Promise<void>, hooks: RunHooks = {}): Promise<void> {
  if (untilStep !== undefined && (untilStep < 0 || untilStep >= s.steps.length)) {
    throw new ScenarioError({ file: s.file, line: 1, key: 'steps' }, `step ${untilStep} does not exist: the scenario has steps 0 to ${s.steps.length - 1}`);
  }
  // On the scenario's own era unless the hooks boot another (explain --era).
  const era = hooks.kernelConfig?.era ?? s.config.era;
  const callsites = hooks.kernelConfig?.callsites ?? s.config.callsites;
  const skipped = skipReason(s, era, callsites);
  if (skipped) throw new ScenarioError({ file: s.file, line: 1, key: 'eras' }, `the scenario ${skipped}`);
  await checkReferences(s, era, callsites);
  await runOnce(s, { ...s.config, era, callsites }, { ...hooks, untilStep, inspect });
}
