// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace's policy (kernel/trace/ftrace.c, v3.18/3.19 with per-ops
 * trampolines): the list of registered ftrace_ops, the accounting of which
 * ops trace which call site, and the choice of what each call site calls.
 * The bytes are the arch's (FtraceArch, arch.ts).
 */
import { hex } from '../../emu/index.js';
import { FTRACE_FL, FTRACE_OPS_FL } from '../abi.js';
import type { Kernel } from '../kernel.js';
import type { CodeRange } from '../machine.js';
import { FtraceBugError, type CodeUpdate, type FtraceArch } from './arch.js';
import { takeFtraceCodeRanges } from './data.js';
import { eraRules } from './era.js';
import { FtraceGraph } from './fgraph.js';
import { filterParseRegex, globMatches } from './glob.js';
import { FtraceOps, type OpsSpec } from './ops.js';
import { DynFtraceTable, recFlags, type DynFtrace } from './records.js';

export const ERRNO = { ENOENT: 2, ENOMEM: 12, EBUSY: 16, ENODEV: 19, EINVAL: 22 } as const;
/** The errors this model's register/unregister/set_filter/set_notrace can return. */
export const RETURNED_ERRNOS = ['EBUSY', 'ENODEV', 'EINVAL'] as const;
export type Errno = (typeof RETURNED_ERRNOS)[number];
export type FtraceResult = { ok: true } | { ok: false; errno: Errno; code: number; message: string };

const OK: FtraceResult = { ok: true };
function fail(errno: Errno, message: string): FtraceResult {
  return { ok: false, errno, code: -ERRNO[errno], message };
}

/* Commands of ftrace_run_update_code(). */
const FTRACE_UPDATE_CALLS = 1 << 0;
const FTRACE_UPDATE_TRACE_FUNC = 1 << 2;
const FTRACE_START_FUNC_RET = 1 << 3;
const FTRACE_STOP_FUNC_RET = 1 << 4;

type UpdateKind = 'ignore' | 'make_call' | 'modify_call' | 'make_nop';

/** What a call site does now, decoded from guest memory. */
export type SiteTarget =
  | { kind: 'nop' }
  /** The compiler's own call: `call __fentry__` (-mfentry) or `call mcount` (-pg alone). */
  | { kind: 'fentry'; hook: '__fentry__' | 'mcount' }
  | { kind: 'ftrace_caller' }
  | { kind: 'ftrace_regs_caller' }
  | { kind: 'trampoline'; ops: string; address: bigint }
  | { kind: 'other'; address: bigint | undefined; bytes: Uint8Array };

export function siteTargetLabel(t: SiteTarget): string {
  switch (t.kind) {
    case 'trampoline':
      return `trampoline(${t.ops})`;
    case 'other':
      return t.address !== undefined ? `call ${hex(t.address)}` : 'unknown';
    default:
      return t.kind === 'fentry' ? t.hook : t.kind;
  }
}

export interface BootReport {
  records: number;
  nopMs: number;
}

/** Makes the arch layer for a kernel; ftrace_location() is the core's, as the records are. */
export type ArchFactory = (kernel: Kernel, ftraceLocation: (ip: bigint) => boolean, opsGetFunc: (ops: FtraceOps) => bigint) => FtraceArch;

export class Ftrace {
  readonly arch: FtraceArch;
  /** ftrace's own code (callers, list function, callbacks, trampolines), as [first, last] ranges. */
  readonly codeRanges: readonly CodeRange[];
  readonly records: DynFtraceTable;
  /** The function name of each record (what %ps prints for its ip). */
  private readonly recordNames: string[];
  /** Mirror of the guest ftrace_ops_list, head first (the guest list is authoritative for the data plane). */
  private opsList: FtraceOps[] = [];
  private readonly byName = new Map<string, FtraceOps>();
  private ftraceTraceFunction: bigint;
  private savedFtraceFunc: bigint;
  private setFunctionTraceOp: bigint;
  private removedOps: FtraceOps | undefined;
  private ftraceDisabled = false;
  private bootSites = new Uint8Array(0);
  private ftraceStartUp = 0;
  private readonly listEnd: bigint;
  private readonly listFunc: bigint;
  private readonly stub: bigint;

  /** ftrace_init()'s first half: a record for every call site in __mcount_loc. */
  constructor(
    readonly kernel: Kernel,
    makeArch: ArchFactory,
  ) {
    this.records = new DynFtraceTable(kernel.memory, kernel.recordsBase, kernel.program.mcountLoc);
    this.arch = makeArch(kernel, (ip) => this.records.lookup(ip) !== undefined, (ops) => this.ftrace_ops_get_func(ops));
    this.codeRanges = takeFtraceCodeRanges(kernel.symbols, kernel.config.modules);
    this.recordNames = this.records.all().map((r) => kernel.symbols.format(r.ip, { short: true }) ?? hex(r.ip));
    this.listEnd = kernel.sym('ftrace_list_end');
    this.listFunc = kernel.sym('ftrace_ops_list_func');
    this.stub = kernel.sym('ftrace_stub');
    this.ftraceTraceFunction = this.stub;
    this.savedFtraceFunc = this.stub;
    this.setFunctionTraceOp = this.listEnd;
  }

  /**
   * ftrace_update_code() at boot: every site to the NOP, after checking that
   * it holds exactly `call __fentry__`. Throws FtraceBugError on the first
   * site that does not.
   */
  convertCallSitesToNop(): BootReport {
    const t0 = performance.now();
    try {
      this.arch.ftrace_make_nop_at_boot(this.records.all());
    } catch (e) {
      if (!(e instanceof FtraceBugError)) throw e;
      this.ftrace_bug(e);
    }
    const size = this.arch.MCOUNT_INSN_SIZE;
    const all = this.records.all();
    this.bootSites = new Uint8Array(all.length * size);
    all.forEach((r, i) => this.kernel.memory.readInto(r.ip, size, this.bootSites, i * size));
    return { records: this.records.length, nopMs: performance.now() - t0 };
  }

  /** A call site's bytes as ftrace_init() left them (read back from guest memory then). */
  siteAfterBoot(rec: DynFtrace): Uint8Array {
    const size = this.arch.MCOUNT_INSN_SIZE;
    return this.bootSites.slice(rec.index * size, (rec.index + 1) * size);
  }

  /** ftrace_disabled: set for good by ftrace_kill(); every later request is -ENODEV. */
  get disabled(): boolean {
    return this.ftraceDisabled;
  }

  /**
   * ftrace_bug(): report the site that did not hold what ftrace expected,
   * then FTRACE_WARN_ON_ONCE() kills ftrace. The kernel goes on (it boots,
   * if this was boot); what was patched stays patched.
   */
  private ftrace_bug(e: FtraceBugError): void {
    this.kernel.warn(e.message);
    this.ftrace_kill();
  }

  /** ftrace_kill(): ftrace_disabled = 1, ftrace_enabled = 0, clear_ftrace_function(). */
  private ftrace_kill(): void {
    this.ftraceDisabled = true;
    this.ftraceTraceFunction = this.stub;
    this.kernel.memory.writeU64(this.kernel.sym('ftrace_trace_function'), this.stub);
  }

  private disabledResult(what: string): FtraceResult {
    return fail('ENODEV', `ftrace is disabled (ftrace_kill() after an ftrace bug): ${what} refused`);
  }

  recordName(rec: DynFtrace): string {
    return this.recordNames[rec.index]!;
  }

  /**
   * The record of a function by name, or undefined: its call site is the
   * first instruction with fentry, after the frame set-up with mcount
   * (ftrace_location_range over the function).
   */
  recordOf(name: string): DynFtrace | undefined {
    const s = this.kernel.symbols.get(name);
    return s ? this.records.lookupRange(s.address, s.address + BigInt(Math.max(s.size, 1))) : undefined;
  }

  /* ---- ftrace_ops lifetime -------------------------------------------------- */

  /** Allocates an ops: static ones in kernel data, dynamic ones with kmalloc. */
  createOps(spec: OpsSpec): FtraceOps {
    if (this.byName.has(spec.name)) throw new Error(`an ftrace_ops named ${spec.name} already exists`);
    if (spec.flags?.includes('IPMODIFY') && !eraRules(this.kernel.config.era).ipmodify) {
      throw new RangeError(`FTRACE_OPS_FL_IPMODIFY does not exist in v${this.kernel.config.era}`);
    }
    const ops = new FtraceOps(this.kernel, spec);
    this.byName.set(spec.name, ops);
    return ops;
  }

  ops(name: string): FtraceOps | undefined {
    return this.byName.get(name);
  }

  allOps(): readonly FtraceOps[] {
    return [...this.byName.values()];
  }

  registered(): readonly FtraceOps[] {
    return this.opsList;
  }

  /** Frees an ops that is not registered (kfree for dynamic ones). */
  destroyOps(ops: FtraceOps): FtraceResult {
    if (ops.hasFlag('ENABLED')) return fail('EBUSY', `${ops.name} is still registered`);
    this.arch.arch_ftrace_trampoline_free(ops);
    ops.destroy();
    this.byName.delete(ops.name);
    this.rcuGracePeriod();
    return OK;
  }

  /* ---- registration --------------------------------------------------------- */

  register_ftrace_function(ops: FtraceOps): FtraceResult {
    const r = this.ftrace_startup(ops, 0);
    this.rcuGracePeriod();
    return r;
  }

  unregister_ftrace_function(ops: FtraceOps): FtraceResult {
    return this.ftrace_shutdown(ops, 0);
  }

  /**
   * The graph tracer's ops (register_ftrace_graph / unregister_ftrace_graph,
   * kernel-model/ftrace/fgraph.ts): registered like any ops, and the shared
   * ftrace_graph_call is switched to ftrace_graph_caller after the call
   * sites are enabled, back to ftrace_stub when the ops leaves.
   */
  register_ftrace_graph_ops(ops: FtraceOps): FtraceResult {
    return this.ftrace_startup(ops, FTRACE_START_FUNC_RET);
  }

  unregister_ftrace_graph_ops(ops: FtraceOps): FtraceResult {
    return this.ftrace_shutdown(ops, FTRACE_STOP_FUNC_RET);
  }

  private graphTracer: FtraceGraph | undefined;
  /** The function graph tracer (made on first use). */
  get graph(): FtraceGraph {
    return (this.graphTracer ??= new FtraceGraph(this));
  }

  /** Told whenever ftrace_ops_list changed (update_function_graph_func() listens). */
  readonly opsListChanged: (() => void)[] = [];

  private __register_ftrace_function(ops: FtraceOps): FtraceResult {
    if (ops.hasFlag('DELETED')) return fail('EINVAL', `${ops.name} is being deleted`);
    if (ops.hasFlag('ENABLED')) return this.warnFail('EBUSY', `${ops.name} is already registered`);
    if (!this.kernel.isCoreKernelData(ops.addr)) ops.setFlag('DYNAMIC', true);
    ops.setFlag('INITIALIZED', true);
    // The tracers whose events the trace shows need the trace clock; the
    // counting probes' and kprobes' entries (for the checks only) do not, and
    // the clock's block hook costs 2-3x per traced call and torture change.
    if ((ops.callback === 'function_trace' || ops.callback === 'function_graph') && this.kernel.config.traceClock) this.kernel.clock.start();
    ops.publishHashes();
    // add_ftrace_ops(): at the head, ops->next first so a walker never sees a hole.
    ops.next = this.kernel.memory.readU64(this.kernel.sym('ftrace_ops_list'));
    this.kernel.memory.writeU64(this.kernel.sym('ftrace_ops_list'), ops.addr);
    this.opsList.unshift(ops);
    this.ftrace_update_trampoline(ops);
    this.update_ftrace_function();
    return OK;
  }

  /** The kernel's `if (WARN_ON(cond)) return -E...;`: the caller's error is also a warning. */
  private warnFail(errno: Errno, message: string): FtraceResult {
    this.kernel.warn(`ftrace: ${message}`);
    return fail(errno, message);
  }

  private __unregister_ftrace_function(ops: FtraceOps): FtraceResult {
    if (!ops.hasFlag('ENABLED')) return this.warnFail('EBUSY', `${ops.name} is not registered`);
    const i = this.opsList.indexOf(ops);
    if (i < 0) return fail('EINVAL', `${ops.name} is not on ftrace_ops_list`);
    // remove_ftrace_ops(): the predecessor (or the list head) skips it.
    if (i === 0) this.kernel.memory.writeU64(this.kernel.sym('ftrace_ops_list'), ops.next);
    else this.opsList[i - 1]!.next = ops.next;
    this.opsList.splice(i, 1);
    this.update_ftrace_function();
    return OK;
  }

  private ftrace_update_trampoline(ops: FtraceOps): void {
    if (eraRules(this.kernel.config.era).trampolines) this.arch.arch_ftrace_update_trampoline(ops);
  }

  /**
   * update_ftrace_function(): what ftrace_call should call. One static,
   * recursion-safe ops is called directly with function_trace_op = that ops;
   * anything else goes through the list function. (A lone dynamic ops also
   * takes the list function: it may be freed while a CPU is on its way to it.)
   */
  private update_ftrace_function(): void {
    let func: bigint;
    const head = this.opsList[0];
    if (!head) {
      this.setFunctionTraceOp = this.listEnd;
      func = this.stub;
    } else if (this.opsList.length === 1) {
      // ftrace_ops_get_list_func(): a lone dynamic ops still goes through the list function.
      this.setFunctionTraceOp = head.addr;
      func = head.hasFlag('DYNAMIC') ? this.listFunc : this.ftrace_ops_get_func(head);
    } else {
      this.setFunctionTraceOp = this.listEnd;
      func = this.listFunc;
    }
    this.ftraceTraceFunction = func;
    this.kernel.memory.writeU64(this.kernel.sym('ftrace_trace_function'), func);
    for (const f of this.opsListChanged) f();
  }

  /**
   * ftrace_ops_get_func(): what calls an ops alone (ftrace_call, or its
   * trampoline's call): ops->func if it is recursion safe, else the era's
   * recursion helper; v3.x sends a dynamic ops to the list function.
   */
  ftrace_ops_get_func(ops: FtraceOps): bigint {
    const rules = eraRules(this.kernel.config.era);
    if (rules.dynamicOpsGetListFunc && ops.hasFlag('DYNAMIC')) return this.listFunc;
    if (!ops.hasFlag('RECURSION_SAFE')) return this.kernel.sym(rules.recursionHelper);
    return ops.func;
  }

  private ftrace_startup(ops: FtraceOps, command: number): FtraceResult {
    if (this.ftraceDisabled) return this.disabledResult(`registering ${ops.name}`);
    const r = this.__register_ftrace_function(ops);
    if (!r.ok) return r;
    this.ftraceStartUp++;
    command |= FTRACE_UPDATE_CALLS;
    ops.flags = ops.flags | FTRACE_OPS_FL.ENABLED | FTRACE_OPS_FL.ADDING;
    const ip = this.ftrace_hash_ipmodify_update(ops, new Set(), ops.filter);
    if (!ip.ok) {
      // The kernel's rollback: off the list again, as if never registered.
      this.__unregister_ftrace_function(ops);
      this.ftraceStartUp--;
      ops.flags = ops.flags & ~(FTRACE_OPS_FL.ENABLED | FTRACE_OPS_FL.ADDING);
      return ip;
    }
    this.ftrace_hash_rec_update(ops, true);
    this.ftrace_startup_enable(command);
    ops.setFlag('ADDING', false);
    return OK;
  }

  private ftrace_startup_enable(command: number): void {
    if (this.savedFtraceFunc !== this.ftraceTraceFunction) {
      this.savedFtraceFunc = this.ftraceTraceFunction;
      command |= FTRACE_UPDATE_TRACE_FUNC;
    }
    if (command) this.ftrace_modify_all_code(command);
  }

  private ftrace_shutdown(ops: FtraceOps, command: number): FtraceResult {
    if (this.ftraceDisabled) return this.disabledResult(`unregistering ${ops.name}`);
    const r = this.__unregister_ftrace_function(ops);
    if (!r.ok) return r;
    this.ftraceStartUp--;
    this.ftrace_hash_ipmodify_update(ops, ops.filter, undefined);
    this.ftrace_hash_rec_update(ops, false);
    command |= FTRACE_UPDATE_CALLS;
    ops.setFlag('ENABLED', false);
    if (this.savedFtraceFunc !== this.ftraceTraceFunction) {
      this.savedFtraceFunc = this.ftraceTraceFunction;
      command |= FTRACE_UPDATE_TRACE_FUNC;
    }
    this.removedOps = ops;
    ops.setFlag('REMOVING', true);
    this.ftrace_modify_all_code(command);
    this.removedOps = undefined;
    ops.setFlag('REMOVING', false);
    if (this.ftraceStartUp === 0) this.checkAllRecordsClear();
    // No call site points at the ops or its trampoline any more, but another
    // CPU may still be on its way through them: wait until no running task
    // is inside ftrace code (what the kernel's synchronisation gives a kernel
    // without preemption).
    this.kernel.machine.scheduler.quiesce();
    // Only a dynamic ops loses its trampoline. A static ops keeps it (and
    // ALLOC_TRAMP) for its next registration, so a task preempted inside it
    // returns through valid code: v3.18 has no arch_ftrace_trampoline_free at
    // all, later kernels free only under FTRACE_OPS_FL_DYNAMIC.
    if (!ops.hasFlag('DYNAMIC')) return OK;
    // A task preempted inside a dynamic ops' trampoline is not running, so the
    // wait above does not see it: the kernel's later answers wait for every
    // CPU to schedule (enough without preemption) or every task to schedule
    // voluntarily (RCU-tasks) before freeing.
    const how = this.kernel.config.trampolineSync;
    if (ops.trampoline !== 0n && how !== 'none') this.kernel.machine.scheduler.waitFor(how);
    this.arch.arch_ftrace_trampoline_free(ops);
    return OK;
  }

  /** After the last ops is gone every record must be back to zero (the kernel's sanity check). */
  private checkAllRecordsClear(): void {
    for (const rec of this.records.all()) {
      if (rec.flags !== 0) {
        this.kernel.warn(`ftrace: record ${this.recordName(rec)} still has flags ${hex(rec.flags)} after the last ops left`);
        return;
      }
    }
  }

  /* ---- filters -------------------------------------------------------------- */

  ftrace_set_filter(ops: FtraceOps, patterns: readonly string[], reset = true): FtraceResult {
    return this.ftrace_set_regex(ops, patterns, reset, 'filter');
  }

  ftrace_set_notrace(ops: FtraceOps, patterns: readonly string[], reset = true): FtraceResult {
    return this.ftrace_set_regex(ops, patterns, reset, 'notrace');
  }

  /** ftrace_set_hash(): edit a copy, fail as a whole when a pattern matches nothing. */
  private ftrace_set_regex(ops: FtraceOps, patterns: readonly string[], reset: boolean, which: 'filter' | 'notrace'): FtraceResult {
    if (this.ftraceDisabled) return this.disabledResult(`setting ${ops.name}'s ${which}`);
    const hash = reset ? new Set<bigint>() : new Set(which === 'filter' ? ops.filter : ops.notrace);
    for (const p of patterns) {
      const g = filterParseRegex(p);
      let found = 0;
      for (const rec of this.records.all()) {
        if (!globMatches(g, this.recordNames[rec.index]!)) continue;
        found++;
        if (g.negate) hash.delete(rec.ip);
        else hash.add(rec.ip);
      }
      if (found === 0) return fail('EINVAL', `${p} matches no function in available_filter_functions`);
    }
    const r = this.ftrace_hash_move(ops, which, hash);
    this.rcuGracePeriod();
    return r;
  }

  /**
   * Lets the RCU callbacks queued so far run: once every CPU is out of
   * ftrace code (the list walk, where hashes are read, runs with preemption
   * disabled, so no task can be stopped inside it), no reader is left.
   */
  private rcuGracePeriod(): void {
    this.kernel.machine.scheduler.quiesce();
    this.kernel.rcuGracePeriod();
  }

  /**
   * __ftrace_hash_update_ipmodify(): an enabled IPMODIFY ops marks every
   * record of its filter FTRACE_FL_IPMODIFY, and no record may carry two such
   * ops (-EBUSY, nothing changed). It must name its functions: an empty
   * filter, which would mean every function, is -EINVAL. `to` undefined is
   * the ops leaving (ftrace_hash_ipmodify_disable).
   */
  private ftrace_hash_ipmodify_update(ops: FtraceOps, from: ReadonlySet<bigint>, to: ReadonlySet<bigint> | undefined): FtraceResult {
    if (!ops.hasFlag('ENABLED') || !ops.hasFlag('IPMODIFY')) return OK;
    if (to !== undefined && to.size === 0) return fail('EINVAL', `${ops.name} has IPMODIFY and no filter: it may not modify every function's ip`);
    const next = to ?? new Set<bigint>();
    const changed: { rec: DynFtrace; set: boolean }[] = [];
    for (const rec of this.records.all()) {
      if (rec.has(FTRACE_FL.DISABLED)) continue;
      const inOld = from.has(rec.ip);
      const inNew = next.has(rec.ip);
      if (inOld === inNew) continue;
      if (inNew && rec.has(FTRACE_FL.IPMODIFY)) {
        for (const c of changed) c.rec.flags = c.set ? recFlags.without(c.rec.flags, FTRACE_FL.IPMODIFY) : recFlags.with(c.rec.flags, FTRACE_FL.IPMODIFY);
        return fail('EBUSY', `${this.recordName(rec)} already has an ops that modifies its ip`);
      }
      rec.flags = inNew ? recFlags.with(rec.flags, FTRACE_FL.IPMODIFY) : recFlags.without(rec.flags, FTRACE_FL.IPMODIFY);
      changed.push({ rec, set: inNew });
    }
    return OK;
  }

  /** ftrace_hash_move() + ftrace_ops_update_code(): swap the hash and fix the call sites. */
  private ftrace_hash_move(ops: FtraceOps, which: 'filter' | 'notrace', hash: Set<bigint>): FtraceResult {
    if (which === 'notrace' && ops.hasFlag('IPMODIFY')) return fail('EINVAL', `${ops.name} has IPMODIFY: it may not have a notrace hash`);
    if (which === 'filter') {
      const r = this.ftrace_hash_ipmodify_update(ops, ops.filter, hash);
      if (!r.ok) return r;
    }
    const enabled = ops.hasFlag('ENABLED');
    if (enabled) this.ftrace_hash_rec_update(ops, false);
    ops.oldFilter = ops.filter;
    ops.oldNotrace = ops.notrace;
    if (which === 'filter') ops.filter = hash;
    else ops.notrace = hash;
    ops.publishHashes();
    if (enabled) {
      this.ftrace_hash_rec_update(ops, true);
      ops.setFlag('MODIFYING', true);
      this.ftrace_modify_all_code(FTRACE_UPDATE_CALLS);
      ops.setFlag('MODIFYING', false);
    }
    ops.oldFilter = undefined;
    ops.oldNotrace = undefined;
    return OK;
  }

  /* ---- record accounting ---------------------------------------------------- */

  /** The records an ops' hashes select: all of them for an empty filter. */
  private recordsOf(ops: FtraceOps): DynFtrace[] {
    const out: DynFtrace[] = [];
    if (ops.filter.size > 0) {
      for (const ip of ops.filter) {
        const rec = this.records.lookup(ip);
        if (rec && !ops.notrace.has(ip)) out.push(rec);
      }
    } else {
      for (const rec of this.records.all()) if (!ops.notrace.has(rec.ip)) out.push(rec);
    }
    return out;
  }

  /**
   * __ftrace_hash_rec_update(): count this ops in (or out of) every record it
   * traces. A record traced by exactly one ops that has a trampoline is
   * marked TRAMP; any ops that wants pt_regs marks it REGS.
   */
  private ftrace_hash_rec_update(ops: FtraceOps, inc: boolean): void {
    if (!ops.hasFlag('ENABLED')) return;
    const saveRegs = ops.hasFlag('SAVE_REGS');
    for (const rec of this.recordsOf(ops)) {
      if (rec.has(FTRACE_FL.DISABLED)) continue;
      let flags = rec.flags;
      if (inc) {
        flags++;
        // A second ops sends the site back to the shared caller.
        flags = recFlags.count(flags) === 1 && ops.trampoline !== 0n ? recFlags.with(flags, FTRACE_FL.TRAMP) : recFlags.without(flags, FTRACE_FL.TRAMP);
        if (saveRegs) flags = recFlags.with(flags, FTRACE_FL.REGS);
      } else {
        if (recFlags.count(flags) === 0) {
          this.kernel.warn(`ftrace: record ${this.recordName(rec)} count would go below zero`);
          continue;
        }
        flags--;
        const count = recFlags.count(flags);
        if (count > 0 && flags & FTRACE_FL.REGS && saveRegs && !this.test_rec_ops_needs_regs(rec, ops)) flags = recFlags.without(flags, FTRACE_FL.REGS);
        // TRAMP is only right while a single ops traces the record. v3.18/3.19
        // always dropped it on decrement; later kernels give the record back
        // to the one remaining ops' trampoline.
        const keep = count === 1 && eraRules(this.kernel.config.era).trampolineOnDecrement && this.ftrace_find_tramp_ops_any_other(rec, ops);
        flags = keep ? recFlags.with(flags, FTRACE_FL.TRAMP) : recFlags.without(flags, FTRACE_FL.TRAMP);
      }
      rec.flags = flags;
    }
  }

  private test_rec_ops_needs_regs(rec: DynFtrace, leaving: FtraceOps): boolean {
    return this.opsList.some((op) => op !== leaving && op.hasFlag('ENABLED') && op.hasFlag('SAVE_REGS') && op.tracesIp(rec.ip));
  }

  /** ftrace_check_record(): compare what the record wants with what its site does. */
  private ftrace_check_record(rec: DynFtrace, enable: boolean, update: boolean): UpdateKind {
    const { with: set, without: clear, bits } = recFlags;
    let flags = rec.flags;
    if (flags & FTRACE_FL.DISABLED) return 'ignore';
    let want = 0;
    if (enable && recFlags.count(flags) > 0) want = FTRACE_FL.ENABLED;
    if (want) {
      if (!(flags & FTRACE_FL.REGS) !== !(flags & FTRACE_FL.REGS_EN)) want = set(want, FTRACE_FL.REGS);
      if (!(flags & FTRACE_FL.TRAMP) !== !(flags & FTRACE_FL.TRAMP_EN)) want = set(want, FTRACE_FL.TRAMP);
    }
    if (bits(flags, FTRACE_FL.ENABLED) === want) return 'ignore';
    if (want) {
      const wasEnabled = (flags & FTRACE_FL.ENABLED) !== 0;
      if (update) {
        flags = set(flags, FTRACE_FL.ENABLED);
        if (want & FTRACE_FL.REGS) flags = flags & FTRACE_FL.REGS ? set(flags, FTRACE_FL.REGS_EN) : clear(flags, FTRACE_FL.REGS_EN);
        if (want & FTRACE_FL.TRAMP) flags = flags & FTRACE_FL.TRAMP ? set(flags, FTRACE_FL.TRAMP_EN) : clear(flags, FTRACE_FL.TRAMP_EN);
        rec.flags = flags;
      }
      return wasEnabled ? 'modify_call' : 'make_call';
    }
    if (update) rec.flags = recFlags.count(flags) === 0 ? 0 : clear(flags, FTRACE_FL.ENABLED | FTRACE_FL.REGS_EN | FTRACE_FL.TRAMP_EN);
    return 'make_nop';
  }

  /** ftrace_find_tramp_ops_any_other(): another enabled ops with a trampoline that traces the record. */
  private ftrace_find_tramp_ops_any_other(rec: DynFtrace, leaving: FtraceOps): FtraceOps | undefined {
    return this.opsList.find((op) => op !== leaving && op.trampoline !== 0n && op.hasFlag('ENABLED') && op.tracesIp(rec.ip));
  }

  private ftrace_find_tramp_ops_new(rec: DynFtrace): FtraceOps | undefined {
    return this.opsList.find((op) => op.trampoline !== 0n && op.tracesIp(rec.ip));
  }

  private ftrace_find_tramp_ops_curr(rec: DynFtrace): FtraceOps | undefined {
    const r = this.removedOps;
    if (r && r.trampoline !== 0n && r.tracesIp(rec.ip)) return r;
    return this.opsList.find((op) => {
      if (op.trampoline === 0n || op.hasFlag('ADDING')) return false;
      return op.tracesIp(rec.ip, op.hasFlag('MODIFYING') ? 'old' : 'current');
    });
  }

  /** ftrace_get_addr_new(): the target the record's wanted flags call for. */
  private ftrace_get_addr_new(rec: DynFtrace): bigint {
    if (rec.has(FTRACE_FL.TRAMP)) {
      const ops = this.ftrace_find_tramp_ops_new(rec);
      if (ops) return ops.trampoline;
      this.kernel.warn(`ftrace: no trampoline ops for ${this.recordName(rec)}`);
    }
    return rec.has(FTRACE_FL.REGS) ? this.arch.FTRACE_REGS_ADDR : this.arch.FTRACE_ADDR;
  }

  /** ftrace_get_addr_curr(): the target the site calls now, by the _EN flags. */
  private ftrace_get_addr_curr(rec: DynFtrace): bigint {
    if (rec.has(FTRACE_FL.TRAMP_EN)) {
      const ops = this.ftrace_find_tramp_ops_curr(rec);
      if (ops) return ops.trampoline;
      this.kernel.warn(`ftrace: no current trampoline ops for ${this.recordName(rec)}`);
    }
    return rec.has(FTRACE_FL.REGS_EN) ? this.arch.FTRACE_REGS_ADDR : this.arch.FTRACE_ADDR;
  }

  /** __ftrace_replace_code(): the change one record needs, its flags updated; undefined if none. */
  private __ftrace_replace_code(rec: DynFtrace, enable: boolean): CodeUpdate | undefined {
    if (this.ftrace_check_record(rec, enable, false) === 'ignore') return undefined;
    const newAddr = this.ftrace_get_addr_new(rec);
    const oldAddr = this.ftrace_get_addr_curr(rec);
    switch (this.ftrace_check_record(rec, enable, true)) {
      case 'make_call':
        return this.arch.make_call(rec, newAddr);
      case 'modify_call':
        return this.arch.modify_call(rec, oldAddr, newAddr);
      case 'make_nop':
        return this.arch.make_nop(rec, oldAddr);
      case 'ignore':
        return undefined;
    }
  }

  private ftrace_replace_code(enable: boolean): void {
    const updates: CodeUpdate[] = [];
    for (const rec of this.records.all()) {
      const u = this.__ftrace_replace_code(rec, enable);
      if (u) updates.push(u);
    }
    try {
      this.arch.ftrace_replace_code(updates);
    } catch (e) {
      // Every patcher checks the whole batch before writing any of it.
      if (!(e instanceof FtraceBugError)) throw e;
      this.ftrace_bug(e);
    }
  }

  /**
   * ftrace_modify_all_code(): first point ftrace_call at the list function
   * (right for any mix of ops), then fix every call site, and only then load
   * function_trace_op and point ftrace_call at the final function.
   */
  private ftrace_modify_all_code(command: number): void {
    const update = (command & FTRACE_UPDATE_TRACE_FUNC) !== 0;
    // A CPU between ftrace_caller's op load and its call of ftrace_call must
    // not see function_trace_op and ftrace_call change under it. The kernel
    // counts on those few instructions never being stretched across its
    // synchronising IPIs (ftrace_sync_ipi); a modelled CPU can be held there
    // for any number of quanta, so each step waits until no CPU is inside
    // ftrace code.
    const { scheduler } = this.kernel.machine;
    if (update) {
      this.arch.ftrace_update_ftrace_func(this.listFunc);
      scheduler.quiesce();
    }
    if (command & FTRACE_UPDATE_CALLS) this.ftrace_replace_code(true);
    if (update && this.ftraceTraceFunction !== this.listFunc) {
      this.kernel.memory.writeU64(this.kernel.sym('function_trace_op'), this.setFunctionTraceOp);
      scheduler.quiesce();
      this.arch.ftrace_update_ftrace_func(this.ftraceTraceFunction);
    }
    if (command & FTRACE_START_FUNC_RET) this.arch.ftrace_enable_ftrace_graph_caller();
    else if (command & FTRACE_STOP_FUNC_RET) this.arch.ftrace_disable_ftrace_graph_caller();
  }

  /* ---- what the guest looks like now --------------------------------------- */

  /** Decodes a call site from guest memory. */
  siteTarget(rec: DynFtrace): SiteTarget {
    const insn = this.arch.decodeCallSite(rec.ip);
    if (insn.kind === 'nop') return { kind: 'nop' };
    if (insn.kind === 'other') return { kind: 'other', address: undefined, bytes: insn.bytes };
    const target = insn.target;
    if (target === this.arch.MCOUNT_ADDR) return { kind: 'fentry', hook: this.kernel.config.callsites === 'mcount' ? 'mcount' : '__fentry__' };
    if (target === this.arch.FTRACE_ADDR) return { kind: 'ftrace_caller' };
    if (target === this.arch.FTRACE_REGS_ADDR) return { kind: 'ftrace_regs_caller' };
    const owner = this.allOps().find((o) => o.trampoline !== 0n && o.trampoline === target);
    if (owner) return { kind: 'trampoline', ops: owner.name, address: target };
    return { kind: 'other', address: target, bytes: this.kernel.memory.read(rec.ip, 5) };
  }

  /** Whether a CPU at `rip` is inside ftrace's own code. */
  inFtraceCode(rip: bigint): boolean {
    return this.codeRanges.some(([a, b]) => rip >= a && rip <= b);
  }
}
