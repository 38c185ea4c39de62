// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One emulated x86-64 CPU: a Unicorn engine over a shared GuestMemory.
 *
 * Hook callbacks are registered with koffi once per process, one per
 * prototype, and find their JavaScript handler by the hook id passed as
 * user_data. Opening and closing engines therefore never creates native
 * trampolines, and an engine that is closed leaves nothing behind.
 */
import { GuestFault, type FaultKind, type RegisterDump } from './faults.js';
import * as watchdog from './watchdog.js';
import { hex } from './hex.js';
import { permsToUc, type GuestMemory, type MemoryListener, type Region } from './memory.js';
import {
  GENERAL_REGS,
  HookCodeProto,
  HookIntrProto,
  HookMemInvalidProto,
  UC_ARCH_X86,
  UC_CTL_TB_FLUSH,
  UC_CTL_TB_REMOVE_CACHE,
  UC_ERR,
  UC_HOOK,
  UC_HOOK_MEM_INVALID,
  UC_MEM,
  UC_MODE_64,
  X86_REG,
  koffi,
  uc,
  ucStrerror,
  type Pointer,
  type RegName,
} from './unicorn.js';

export type Symbolizer = (address: bigint) => string | undefined;

/** Returned by an interrupt handler: 'handled' resumes the guest, 'unhandled' faults. */
export type InterruptVerdict = 'handled' | 'unhandled';
export type CodeHook = (address: bigint, size: number) => void;
export type InterruptHook = (intno: number, engine: Engine) => InterruptVerdict;

export interface HookHandle {
  readonly id: number;
  readonly kind: 'code' | 'interrupt';
}

export interface RunOptions {
  begin: bigint;
  /** Stop when RIP reaches this address (usually a return address pushed by the caller). */
  until: bigint;
  /**
   * At most this many guest instructions. Counted by a code hook (a JS call
   * per instruction: for tests and fault hunting, not fast paths); Unicorn
   * 2.0.1's own `count` leaves the engine slow or stuck in later timed runs.
   */
  budget?: number;
  /** Wall-clock limit in milliseconds (0 or absent: none). */
  timeoutMs?: number;
  /**
   * Stop after exactly this many instructions and return { reason: 'quantum' }
   * (a scheduler's time slice). Only for engines opened with `counting`.
   */
  quantum?: number;
}

/** Why a run ended without a fault. */
export type RunEnd = { reason: 'until' } | { reason: 'stopped'; rip: bigint } | { reason: 'quantum'; rip: bigint };

/**
 * Unicorn 2.0.1 counts instructions only in code translated while counting
 * was on, and flushes its whole translation cache (seconds, and a gigabyte
 * resident) when a run without a count follows runs with one. So an engine
 * either always counts (`counting`: every run passes a count, the largest
 * when the caller wants none) or never does.
 */
const NO_QUANTUM = 0x7fffffff;

type Handler = (...args: never[]) => unknown;
const handlers = new Map<number, Handler>();
let nextHookId = 1;

function toU64(n: number | bigint): bigint {
  return BigInt.asUintN(64, BigInt(n));
}

// The process-wide native callbacks: user_data carries the hook id.
const nativeCode = koffi.register(
  (_uc: Pointer, address: number | bigint, size: number, id: number) => {
    (handlers.get(Number(id)) as ((a: number | bigint, s: number) => void) | undefined)?.(address, size);
  },
  koffi.pointer(HookCodeProto),
);
const nativeIntr = koffi.register(
  (_uc: Pointer, intno: number, id: number) => {
    (handlers.get(Number(id)) as ((n: number) => void) | undefined)?.(intno);
  },
  koffi.pointer(HookIntrProto),
);
const nativeMemInvalid = koffi.register(
  (_uc: Pointer, type: number, address: number | bigint, size: number, _value: unknown, id: number) => {
    (handlers.get(Number(id)) as ((t: number, a: number | bigint, s: number) => void) | undefined)?.(type, address, size);
    return false; // never map on demand: the access is a fault
  },
  koffi.pointer(HookMemInvalidProto),
);

const memTypeToKind: Record<number, FaultKind> = {
  [UC_MEM.READ_UNMAPPED]: 'unmapped-read',
  [UC_MEM.WRITE_UNMAPPED]: 'unmapped-write',
  [UC_MEM.FETCH_UNMAPPED]: 'unmapped-fetch',
  [UC_MEM.READ_PROT]: 'protection-read',
  [UC_MEM.WRITE_PROT]: 'protection-write',
  [UC_MEM.FETCH_PROT]: 'protection-fetch',
};
const errToKind: Record<number, FaultKind> = {
  [UC_ERR.READ_UNMAPPED]: 'unmapped-read',
  [UC_ERR.WRITE_UNMAPPED]: 'unmapped-write',
  [UC_ERR.FETCH_UNMAPPED]: 'unmapped-fetch',
  [UC_ERR.READ_PROT]: 'protection-read',
  [UC_ERR.WRITE_PROT]: 'protection-write',
  [UC_ERR.FETCH_PROT]: 'protection-fetch',
  [UC_ERR.INSN_INVALID]: 'invalid-instruction',
  [UC_ERR.EXCEPTION]: 'unhandled-interrupt',
};

let openEngines = 0;
/** Engines currently open in this process (for leak checks). */
export function openEngineCount(): number {
  return openEngines;
}

export class Engine implements MemoryListener {
  private handle: Pointer | null;
  /** How many of hookIds are this class's own (fault and interrupt hooks). */
  private internalHooks = 0;
  private readonly hookIds: Map<number, number> = new Map(); // our id -> native hook handle
  private readonly interruptHooks: InterruptHook[] = [];
  private readonly regBuf = Buffer.alloc(8);
  private lastBadAccess: { kind: FaultKind; address: bigint } | undefined;
  private pendingFault: { kind: FaultKind; note: string } | undefined;
  private stopRequested = false;
  /** Whether any code was translated since the last flush (a flush of a fresh engine costs seconds). */
  private translated = false;

  private constructor(
    readonly memory: GuestMemory,
    private readonly symbolize: Symbolizer | undefined,
    /** Every run of this engine counts instructions (see NO_QUANTUM). */
    readonly counting: boolean,
  ) {
    this.handle = null;
    this.start();
  }

  /** Opens the Unicorn engine, maps the memory and installs the fault and interrupt hooks. */
  private start(): void {
    const out: [Pointer] = [null];
    check(uc.open(UC_ARCH_X86, UC_MODE_64, out), 'uc_open');
    this.handle = out[0];
    this.translated = false;
    openEngines++;
    try {
      this.memory.addListener(this);
      this.addNative(UC_HOOK_MEM_INVALID, nativeMemInvalid, (type: number, address: number | bigint) => {
        this.lastBadAccess = { kind: memTypeToKind[type] ?? 'engine-error', address: toU64(address) };
      }, 1n, 0n);
      this.addNative(UC_HOOK.INTR, nativeIntr, (intno: number) => this.onInterrupt(intno), 1n, 0n);
      this.internalHooks = this.hookIds.size;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * Replaces the Unicorn engine under this CPU by a fresh one, with the same
   * memory, registers and interrupt handlers. Unicorn 2.0.1 never gives back
   * the translation buffer that retranslated code fills, and its own flush of
   * that buffer makes a gigabyte resident: a CPU whose code keeps being
   * patched is renewed now and then instead. Not while code or block hooks
   * are installed (their owners hold handles to them): returns false then.
   */
  renew(): boolean {
    if (this.hookIds.size !== this.internalHooks) return false;
    const saved = new Map<RegName, bigint>();
    for (const r of [...GENERAL_REGS, 'fs_base', 'gs_base'] as RegName[]) saved.set(r, this.readReg(r));
    this.close();
    this.start();
    for (const [r, v] of saved) this.writeReg(r, v);
    return true;
  }

  /** Opens a CPU that sees every region of `memory`, now and later. */
  static open(memory: GuestMemory, opts: { symbolize?: Symbolizer; counting?: boolean } = {}): Engine {
    return new Engine(memory, opts.symbolize, !!opts.counting);
  }

  close(): void {
    if (this.handle === null) return;
    this.memory.removeListener(this);
    for (const id of this.hookIds.keys()) handlers.delete(id);
    this.hookIds.clear();
    uc.close(this.handle);
    this.handle = null;
    openEngines--;
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error('engine is closed');
    return this.handle;
  }

  // MemoryListener: keep Unicorn's map equal to the GuestMemory's.
  onMap(r: Region): void {
    check(uc.memMapPtr(this.h(), r.base, r.size, permsToUc(r.perms), r.buffer), `map ${r.name} at ${hex(r.base)}`);
  }
  onUnmap(r: Region): void {
    check(uc.memUnmap(this.h(), r.base, r.size), `unmap ${r.name}`);
    this.flushCode();
  }
  onProtect(r: Region): void {
    check(uc.memProtect(this.h(), r.base, r.size, permsToUc(r.perms)), `protect ${r.name}`);
    this.flushCode();
  }

  readReg(name: RegName): bigint {
    check(uc.regRead(this.h(), X86_REG[name], this.regBuf), `read ${name}`);
    return this.regBuf.readBigUInt64LE(0);
  }

  writeReg(name: RegName, value: bigint): void {
    this.regBuf.writeBigUInt64LE(BigInt.asUintN(64, value), 0);
    check(uc.regWrite(this.h(), X86_REG[name], this.regBuf), `write ${name}`);
  }

  registers(): RegisterDump {
    const out = {} as RegisterDump;
    for (const r of GENERAL_REGS) out[r] = this.readReg(r);
    return out;
  }

  /** Drops translated code for [begin, end): what sync_core() means for this CPU. */
  invalidate(begin: bigint, end: bigint): void {
    check(uc.ctl(this.h(), UC_CTL_TB_REMOVE_CACHE, 'uint64_t', begin, 'uint64_t', end), 'remove TB cache');
  }

  flushCode(): void {
    if (!this.translated) return;
    check(uc.ctl(this.h(), UC_CTL_TB_FLUSH), 'flush TB cache');
    this.translated = false;
  }

  /**
   * Code translated before a hook existed does not call it: drop the
   * translations the hook covers. A range is cheap to drop; a global hook
   * (begin > end) needs a full flush, whose first run in an engine costs
   * seconds in Unicorn 2.0.1.
   */
  retranslate(begin: bigint, end: bigint): void {
    if (end >= begin) this.invalidate(begin, end === 0xffffffffffffffffn ? end : end + 1n);
    else this.flushCode();
  }

  private addNative(type: number, native: unknown, fn: Handler, begin: bigint, end: bigint): number {
    const id = nextHookId++;
    handlers.set(id, fn);
    const hh: [number | bigint] = [0];
    const err = uc.hookAdd(this.h(), hh, type, native, id, begin, end) as number;
    if (err !== UC_ERR.OK) {
      handlers.delete(id);
      throw new Error(`uc_hook_add: ${ucStrerror(err)}`);
    }
    this.hookIds.set(id, Number(hh[0]));
    return id;
  }

  /**
   * Calls `fn` before every instruction in [begin, end] (all code when omitted).
   * Costly (a JS call per instruction): for measurement runs, not hot paths.
   */
  addCodeHook(fn: CodeHook, begin = 1n, end = 0n): HookHandle {
    const id = this.addNative(UC_HOOK.CODE, nativeCode, (a: number | bigint, s: number) => fn(toU64(a), s), begin, end);
    this.retranslate(begin, end);
    return { id, kind: 'code' };
  }

  /**
   * Calls `fn` before every translated block in [begin, end] (all code when
   * omitted) with its address (a signed number for upper-half addresses, as
   * koffi hands it over: cheap to use as a key) and size in bytes. Cheaper
   * than a code hook; best added before the engine first runs, when no
   * translation has to be dropped.
   */
  addBlockHook(fn: (address: number | bigint, size: number) => void, begin = 1n, end = 0n): HookHandle {
    const id = this.addNative(UC_HOOK.BLOCK, nativeCode, fn, begin, end);
    if (this.translated) this.retranslate(begin, end);
    return { id, kind: 'code' };
  }

  /** Counts instructions executed in [begin, end]; read the count with the returned getter. */
  addInstructionCounter(begin = 1n, end = 0n): { handle: HookHandle; count: () => number; reset: () => void } {
    let n = 0;
    const id = this.addNative(UC_HOOK.CODE, nativeCode, () => { n++; }, begin, end);
    this.retranslate(begin, end);
    return { handle: { id, kind: 'code' }, count: () => n, reset: () => { n = 0; } };
  }

  /** Interrupt handlers are asked in order; the first 'handled' wins. */
  addInterruptHook(fn: InterruptHook): HookHandle {
    this.interruptHooks.push(fn);
    return { id: -this.interruptHooks.length, kind: 'interrupt' };
  }

  removeHook(h: HookHandle): void {
    if (h.kind === 'interrupt') {
      const i = -h.id - 1;
      if (this.interruptHooks[i]) this.interruptHooks[i] = () => 'unhandled';
      return;
    }
    const native = this.hookIds.get(h.id);
    if (native === undefined) return;
    uc.hookDel(this.h(), native);
    this.hookIds.delete(h.id);
    handlers.delete(h.id);
  }

  private onInterrupt(intno: number): void {
    for (const fn of this.interruptHooks) {
      if (fn(intno, this) === 'handled') return;
    }
    this.pendingFault = { kind: 'unhandled-interrupt', note: `interrupt ${intno}` };
    uc.emuStop(this.h());
  }

  /** Asks the running guest to stop before its next instruction (from a hook). */
  stop(): void {
    this.stopRequested = true;
    uc.emuStop(this.h());
  }

  /**
   * Runs from `begin` until RIP == `until`. Faults, an exhausted budget and a
   * timeout are thrown as GuestFault; a stop() requested by a hook returns.
   */
  run(opts: RunOptions): RunEnd {
    if (opts.quantum !== undefined && !this.counting) throw new Error('a quantum needs an engine opened with counting');
    this.lastBadAccess = undefined;
    this.pendingFault = undefined;
    this.stopRequested = false;
    let budgetHook: HookHandle | undefined;
    if (opts.budget !== undefined) {
      let left = opts.budget;
      budgetHook = this.addCodeHook(() => {
        if (left-- > 0) return;
        this.pendingFault = { kind: 'budget-exhausted', note: `budget of ${opts.budget} instructions` };
        uc.emuStop(this.h());
      });
    }
    let err: number;
    let timedOut = false;
    this.translated = true;
    const gen = opts.timeoutMs ? watchdog.arm(this.h(), opts.timeoutMs) : 0;
    try {
      const count = this.counting ? Math.min(opts.quantum ?? NO_QUANTUM, NO_QUANTUM) : 0;
      err = uc.emuStart(this.h(), opts.begin, opts.until, 0n, count) as number;
    } finally {
      if (gen) timedOut = watchdog.disarm(gen);
      if (budgetHook) this.removeHook(budgetHook);
    }
    const rip = this.readReg('rip');
    // Set by hooks during the run, which TypeScript's flow analysis cannot see.
    const bad = this.lastBadAccess as { kind: FaultKind; address: bigint } | undefined;
    const pending = this.pendingFault as { kind: FaultKind; note: string } | undefined;
    if (err !== UC_ERR.OK) {
      const kind = bad?.kind ?? errToKind[err] ?? 'engine-error';
      throw this.fault(kind, bad?.address ?? rip, pending?.note ?? ucStrerror(err));
    }
    if (pending) throw this.fault(pending.kind, rip, pending.note);
    if (rip === opts.until) return { reason: 'until' };
    if (this.stopRequested) return { reason: 'stopped', rip };
    if (opts.quantum !== undefined && !timedOut) return { reason: 'quantum', rip };
    if (timedOut) throw this.fault('timeout', rip, `wall-clock limit of ${opts.timeoutMs} ms`);
    throw this.fault('engine-error', rip, 'emulation stopped for no known reason');
  }

  private fault(kind: FaultKind, address: bigint, note: string): GuestFault {
    const rip = this.readReg('rip');
    let code: Uint8Array | undefined;
    try {
      code = this.memory.read(rip, 16);
    } catch {
      code = undefined;
    }
    return new GuestFault({ kind, address, rip, symbol: this.symbolize?.(rip), registers: this.registers(), code, note });
  }
}

function check(err: unknown, what: string): void {
  if (err !== UC_ERR.OK) throw new Error(`${what}: ${ucStrerror(Number(err))}`);
}
