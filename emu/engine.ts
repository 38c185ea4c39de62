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
import { PAGE_TABLES_PHYS } from './paging.js';
import {
  GENERAL_REGS,
  HookCodeProto,
  HookIntrProto,
  HookMemInvalidProto,
  HookTlbFillProto,
  TlbEntry,
  UC_ARCH_X86,
  UC_AT_LEAST_2_1,
  UC_CTL_TB_FLUSH,
  UC_CTL_TB_REMOVE_CACHE,
  UC_CTL_TLB_FLUSH,
  UC_CTL_TLB_TYPE,
  UC_ERR,
  UC_HOOK,
  UC_HOOK_MEM_INVALID,
  UC_MEM,
  UC_MODE_64,
  UC_PROT,
  UC_TLB_CPU,
  UC_TLB_VIRTUAL,
  UC_X86_REG_MSR,
  X86_REG,
  koffi,
  uc,
  ucStrerror,
  type Pointer,
  type RegName,
} from './unicorn.js';

export type Symbolizer = (address: bigint) => string | undefined;
/** Finds the instruction of a data fault from the start of its block (see Engine.fault). */
export type DataFaultLocator = (blockStart: bigint, address: bigint, write: boolean, registers: RegisterDump) => bigint | undefined;

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
  /**
   * Wall-clock limit in milliseconds (0 or absent: none), kept to within
   * watchdog.TICK_MS. Ignored when `quantum` or `budget` bounds the run.
   */
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

const nativeTlbFill = koffi.register(
  (_uc: Pointer, vaddr: number | bigint, type: number, result: Pointer, id: number) =>
    !!(handlers.get(Number(id)) as ((v: number | bigint, t: number, r: Pointer) => boolean) | undefined)?.(vaddr, type, result),
  koffi.pointer(HookTlbFillProto),
);

const X86_TRAP_DF = 8;
const X86_TRAP_PF = 14;
/** Guest physical page where nothing is mapped: refused TLB fills point there (onTlbFill). */
const FAULT_PHYS = 0xfff000n;

/* Control registers for long mode with paging, as the kernel runs. */
const CR0_PE = 1n;
const CR0_WP = 1n << 16n; // supervisor writes honour read-only pages
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const MSR_EFER = 0xc0000080;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
const EFER_NXE = 1n << 11n;

/* Unicorn names each bad access alike in its memory hook type (UC_MEM_*) and its error (UC_ERR_*). */
const ACCESS_FAULTS: [keyof typeof UC_MEM & keyof typeof UC_ERR, FaultKind][] = [
  ['READ_UNMAPPED', 'unmapped-read'],
  ['WRITE_UNMAPPED', 'unmapped-write'],
  ['FETCH_UNMAPPED', 'unmapped-fetch'],
  ['READ_PROT', 'protection-read'],
  ['WRITE_PROT', 'protection-write'],
  ['FETCH_PROT', 'protection-fetch'],
];
const memTypeToKind: Record<number, FaultKind> = Object.fromEntries(ACCESS_FAULTS.map(([n, k]) => [UC_MEM[n], k]));
const errToKind: Record<number, FaultKind> = {
  ...Object.fromEntries(ACCESS_FAULTS.map(([n, k]) => [UC_ERR[n], k])),
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
  /** The engine's address, for the watchdog (computed once: runs are hot). */
  private address = 0n;
  /** How many of hookIds are this class's own (fault and interrupt hooks). */
  private internalHooks = 0;
  private readonly hookIds: Map<number, number> = new Map(); // our id -> native hook handle
  /** Code and block hooks added through the public methods: renew() installs them again, under the same ids. */
  private readonly userHooks = new Map<number, { type: number; native: unknown; fn: Handler; begin: bigint; end: bigint }>();
  private readonly interruptHooks: InterruptHook[] = [];
  private readonly regBuf = Buffer.alloc(8);
  private lastBadAccess: { kind: FaultKind; address: bigint } | undefined;
  /** Unicorn 2.1: this engine runs in the virtual-TLB mode for good (forgetPageFault). */
  private virtualTlb = false;
  /** A #PF seen by onInterrupt in this run: where the CPU was, and CR2. */
  private pageFault: { rip: bigint; cr2: bigint } | undefined;
  /** The page whose TLB fill was refused in this run (Unicorn 2.1, see onTlbFill). */
  private refusedPage: { page: bigint; kind: FaultKind } | undefined;
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
    this.address = BigInt.asIntN(64, BigInt(koffi.address(this.handle)));
    this.translated = false;
    openEngines++;
    try {
      const pt = this.memory.pageTables;
      check(uc.memMapPtr(this.h(), PAGE_TABLES_PHYS, pt.size, UC_PROT.READ | UC_PROT.WRITE, pt.buffer), 'map page tables');
      this.memory.addListener(this);
      this.enablePaging();
      /*
       * Unicorn 2.1 walks the page tables itself (its CPU TLB), and a failed
       * walk is a #PF whose error code (read, write or fetch) it does not
       * expose: namePageFault() replays the faulting instruction in the
       * virtual-TLB mode with the hooks of addFaultHooks() to learn it. Those
       * hooks are installed only then: with a TLB-fill or an invalid-memory
       * hook merely present, 2.1 ran the guest 2.5x slower and a traced call
       * 7x slower (measured with npm run bench; the virtual-TLB mode itself
       * ~6x). Unicorn 2.0 names data faults itself through this hook.
       */
      if (!UC_AT_LEAST_2_1) this.addFaultHooks();
      this.addNative(UC_HOOK.INTR, nativeIntr, (intno: number) => this.onInterrupt(intno), 1n, 0n);
      this.internalHooks = this.hookIds.size;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** What the kernel's startup_64 does: PAE, long mode, NX, then CR3 and paging with WP. */
  private enablePaging(): void {
    this.writeReg('cr4', this.readReg('cr4') | CR4_PAE);
    const msr = Buffer.alloc(16);
    msr.writeUInt32LE(MSR_EFER, 0);
    // Unicorn 2.0.1's CPU model has no NX: EFER.NXE does not stick there (paging.ts).
    msr.writeBigUInt64LE(EFER_LME | EFER_LMA | (UC_AT_LEAST_2_1 ? EFER_NXE : 0n), 8);
    check(uc.regWrite(this.h(), UC_X86_REG_MSR, msr), 'write EFER');
    this.writeReg('cr3', this.memory.pageTables.cr3);
    this.writeReg('cr0', this.readReg('cr0') | CR0_PE | CR0_WP | CR0_PG);
  }

  /**
   * Unicorn 2.1's TLB fill (virtual TLB): the MMU's walk of the page tables
   * and its permission check. A refused fill would stop the run with a bare
   * UC_ERR_EXCEPTION and the page's address only (the hook is given the
   * page, and CR2 is not set). So a refused page is filled with FAULT_PHYS,
   * where nothing is mapped: the access then fails in Unicorn's own memory
   * check, whose hook gives the exact address within the page, and the kind
   * (unmapped or protection; read, write or fetch) recorded here names it.
   */
  private onTlbFill(vaddr: number | bigint, type: number, result: Pointer): boolean {
    const v = toU64(vaddr) & ~0xfffn;
    const t = this.memory.pageTables.walk(v);
    const allowed = t && (type === UC_MEM.WRITE ? t.perms.write : type === UC_MEM.FETCH ? t.perms.exec : t.perms.read);
    if (allowed) {
      koffi.encode(result, TlbEntry, { paddr: t.phys & ~0xfffn, perms: permsToUc(t.perms) });
    } else {
      const access = type === UC_MEM.WRITE ? 'write' : type === UC_MEM.FETCH ? 'fetch' : 'read';
      this.refusedPage = { page: v, kind: `${t ? 'protection' : 'unmapped'}-${access}` };
      koffi.encode(result, TlbEntry, { paddr: FAULT_PHYS, perms: UC_PROT.ALL });
    }
    return true;
  }

  /** A bad access reported by Unicorn: through FAULT_PHYS, it is the refused page's. */
  private onBadAccess(type: number, address: number | bigint): void {
    const a = toU64(address);
    const refused = this.refusedPage;
    if (refused && a >= FAULT_PHYS && a < FAULT_PHYS + 0x1000n) {
      this.lastBadAccess = { kind: refused.kind, address: refused.page + (a - FAULT_PHYS) };
    } else {
      this.lastBadAccess = { kind: memTypeToKind[type] ?? 'engine-error', address: a };
    }
  }

  /** The hooks that name faults: invalid memory (both versions) and, on 2.1, the TLB fill. Returns their ids. */
  private addFaultHooks(): number[] {
    const ids = [this.addNative(UC_HOOK_MEM_INVALID, nativeMemInvalid, (type: number, address: number | bigint) => this.onBadAccess(type, address), 1n, 0n)];
    if (UC_AT_LEAST_2_1) ids.push(this.addNative(UC_HOOK.TLB_FILL, nativeTlbFill, (v: number | bigint, t: number, r: Pointer) => this.onTlbFill(v, t, r), 1n, 0n));
    return ids;
  }

  /** Drops this CPU's cached translations after the page tables changed (a CR3 reload on 2.0). */
  private flushTlb(): void {
    if (UC_AT_LEAST_2_1) check(uc.ctl(this.h(), UC_CTL_TLB_FLUSH), 'flush TLB');
    else this.writeReg('cr3', this.memory.pageTables.cr3);
  }

  /**
   * Replaces the Unicorn engine under this CPU by a fresh one, with the same
   * memory, registers and interrupt handlers. Unicorn 2.0.1 never gives back
   * the translation buffer that retranslated code fills, and its own flush of
   * that buffer makes a gigabyte resident: a CPU whose code keeps being
   * patched is renewed now and then instead. Code and block hooks move to
   * the fresh engine under the same ids, so their HookHandles stay valid.
   * Returns false (and keeps the engine) only while a fault is being named
   * (its transient hooks are installed).
   */
  renew(): boolean {
    if (this.hookIds.size !== this.internalHooks + this.userHooks.size) return false;
    const saved = new Map<RegName, bigint>();
    for (const r of [...GENERAL_REGS, 'fs_base', 'gs_base'] as RegName[]) saved.set(r, this.readReg(r));
    const user = [...this.userHooks];
    this.close();
    this.start();
    for (const [r, v] of saved) this.writeReg(r, v);
    for (const [id, h] of user) {
      this.addNative(h.type, h.native, h.fn, h.begin, h.end, id);
      this.userHooks.set(id, h);
    }
    return true;
  }

  /** Opens a CPU that sees every region of `memory`, now and later. */
  static open(memory: GuestMemory, opts: { symbolize?: Symbolizer; counting?: boolean; locateDataFault?: DataFaultLocator } = {}): Engine {
    const e = new Engine(memory, opts.symbolize, !!opts.counting);
    e.locateDataFault = opts.locateDataFault;
    return e;
  }

  close(): void {
    if (this.handle === null) return;
    this.memory.removeListener(this);
    for (const id of this.hookIds.keys()) handlers.delete(id);
    this.hookIds.clear();
    this.userHooks.clear();
    uc.close(this.handle);
    this.handle = null;
    openEngines--;
  }

  private h(): Pointer {
    if (this.handle === null) throw new Error('engine is closed');
    return this.handle;
  }

  /*
   * MemoryListener: each region's buffer is mapped at its physical home; the
   * page tables (GuestMemory's) map it at its virtual address, and hold its
   * permissions. Unicorn 2.0 also checks every access's *virtual* address
   * against its mapped regions (a fetch through the page tables alone fails
   * with UC_ERR_FETCH_UNMAPPED), so there the same buffer is mapped at the
   * virtual address as well, with the region's permissions: its checks
   * then agree with the page tables, and give the faults their kind.
   */
  onMap(r: Region): void {
    check(uc.memMapPtr(this.h(), r.phys, r.size, UC_PROT.ALL, r.buffer), `map ${r.name} at physical ${hex(r.phys)}`);
    if (!UC_AT_LEAST_2_1) check(uc.memMapPtr(this.h(), r.base, r.size, permsToUc(r.perms), r.buffer), `map ${r.name} at ${hex(r.base)}`);
  }
  onUnmap(r: Region): void {
    // Drop the region's translations while it is still mapped (a full flush
    // costs seconds on a fresh 2.0.1 engine).
    this.removeTbs(r.base, r.base + BigInt(r.size));
    check(uc.memUnmap(this.h(), r.phys, r.size), `unmap ${r.name}`);
    if (!UC_AT_LEAST_2_1) check(uc.memUnmap(this.h(), r.base, r.size), `unmap ${r.name}`);
    this.flushTlb();
  }
  onProtect(r: Region): void {
    if (!UC_AT_LEAST_2_1) check(uc.memProtect(this.h(), r.base, r.size, permsToUc(r.perms)), `protect ${r.name}`);
    this.flushTlb();
    // Code translated under the old permissions is dropped: just this region's
    // (a full flush costs seconds on a fresh 2.0.1 engine).
    this.removeTbs(r.base, r.base + BigInt(r.size));
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

  /**
   * Drops translated code for [begin, end): what sync_core() means for this CPU.
   *
   * Under paging Unicorn keys translations by physical address (a test
   * shows it on 2.1): TB_REMOVE_CACHE translates `begin` through the MMU and
   * drops [phys(begin), phys(begin) + length). Regions are physically contiguous
   * but not next to each other, so a range is dropped region by region, and
   * only where code can be (executable regions).
   */
  invalidate(begin: bigint, end: bigint): void {
    const one = this.memory.find(begin, Number(end - begin));
    if (one) {
      if (one.perms.exec) this.removeTbs(begin, end);
      return;
    }
    for (const r of this.memory.allRegions()) {
      const rEnd = r.base + BigInt(r.size);
      if (!r.perms.exec || r.base >= end || rEnd <= begin) continue;
      this.removeTbs(begin > r.base ? begin : r.base, end < rEnd ? end : rEnd);
    }
  }

  private removeTbs(begin: bigint, end: bigint): void {
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

  private addNative(type: number, native: unknown, fn: Handler, begin: bigint, end: bigint, id = nextHookId++): number {
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

  private addUser(type: number, native: unknown, fn: Handler, begin: bigint, end: bigint): number {
    const id = this.addNative(type, native, fn, begin, end);
    this.userHooks.set(id, { type, native, fn, begin, end });
    return id;
  }

  /**
   * Calls `fn` before every instruction in [begin, end] (all code when omitted).
   * Costly (a JS call per instruction): for measurement runs, not hot paths.
   */
  addCodeHook(fn: CodeHook, begin = 1n, end = 0n): HookHandle {
    const id = this.addUser(UC_HOOK.CODE, nativeCode, (a: number | bigint, s: number) => fn(toU64(a), s), begin, end);
    this.retranslate(begin, end);
    return { id, kind: 'code' };
  }

  /**
   * Calls `fn` before every translated block in [begin, end] (all code when
   * omitted) with its address (a signed number for upper-half addresses, as
   * koffi hands it over: cheap to use as a key) and size in bytes. Cheaper
   * than a code hook. Code translated before has to be dropped: a fresh
   * engine (renew()) drops it far faster than a flush when it can be had.
   */
  addBlockHook(fn: (address: number | bigint, size: number) => void, begin = 1n, end = 0n): HookHandle {
    const id = this.addUser(UC_HOOK.BLOCK, nativeCode, fn, begin, end);
    if (this.translated && !this.renew()) this.retranslate(begin, end);
    return { id, kind: 'code' };
  }

  /** Counts instructions executed in [begin, end]; read the count with the returned getter. */
  addInstructionCounter(begin = 1n, end = 0n): { handle: HookHandle; count: () => number; reset: () => void } {
    let n = 0;
    const id = this.addUser(UC_HOOK.CODE, nativeCode, () => { n++; }, begin, end);
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
    this.userHooks.delete(h.id);
    handlers.delete(h.id);
  }

  private onInterrupt(intno: number): void {
    // Unicorn never delivers the #PF to the guest, so the CPU still thinks it
    // is delivering it when the next one comes, and reports that one as a
    // double fault (#DF, 8): with no IDT in the model, a #DF is always that.
    if (intno === X86_TRAP_PF || intno === X86_TRAP_DF) {
      this.pageFault = { rip: this.readReg('rip'), cr2: this.readReg('cr2') };
      uc.emuStop(this.h());
      return;
    }
    for (const fn of this.interruptHooks) {
      if (fn(intno, this) === 'handled') return;
    }
    this.pendingFault = { kind: 'unhandled-interrupt', note: `interrupt ${intno}` };
    uc.emuStop(this.h());
  }

  /**
   * Names a page fault: its kind (unmapped or protection; read, write or
   * fetch) and its exact address, which Unicorn's #PF does not give.
   *
   * Unicorn 2.0 checks data accesses against the regions mapped at virtual
   * addresses before the page walk, so those faults arrive typed; only an
   * instruction fetch from a page the tables do not map arrives as a #PF,
   * with CR2 = RIP.
   *
   * Unicorn 2.1: the faulting instruction is run once more, alone, in the
   * virtual-TLB mode, where onTlbFill walks the same page tables and sees
   * which access fails. It fails at the same access with the same
   * registers, so it changes nothing the first attempt did not; the
   * registers are put back and the CPU TLB mode restored.
   */
  private namePageFault(pf: { rip: bigint; cr2: bigint }): { kind: FaultKind; address: bigint } {
    if (!UC_AT_LEAST_2_1 || this.virtualTlb) {
      const kind: FaultKind = pf.cr2 !== pf.rip ? 'engine-error' : this.memory.find(pf.cr2) ? 'protection-fetch' : 'unmapped-fetch';
      return { kind, address: pf.cr2 };
    }
    const saved = new Map<RegName, bigint>();
    for (const r of [...GENERAL_REGS, 'fs_base', 'gs_base'] as RegName[]) saved.set(r, this.readReg(r));
    this.lastBadAccess = undefined;
    this.refusedPage = undefined;
    const hooks = this.addFaultHooks();
    check(uc.ctl(this.h(), UC_CTL_TLB_TYPE, 'int', UC_TLB_VIRTUAL), 'virtual TLB');
    this.flushTlb();
    try {
      uc.emuStart(this.h(), pf.rip, 0n, 0n, 1);
    } finally {
      for (const id of hooks) this.removeHook({ id, kind: 'code' });
      check(uc.ctl(this.h(), UC_CTL_TLB_TYPE, 'int', UC_TLB_CPU), 'CPU TLB');
      this.refusedPage = undefined;
      this.flushTlb();
      for (const [r, v] of saved) this.writeReg(r, v);
    }
    const found = this.lastBadAccess as { kind: FaultKind; address: bigint } | undefined;
    return found ?? { kind: 'engine-error', address: pf.cr2 };
  }

  /**
   * Unicorn never delivers a #PF to the guest, so the CPU stays "inside" it:
   * the next #PF is reported as a #DF, and the one after is a triple fault,
   * which halts the CPU without an error. A fresh engine (renew) forgets it;
   * an engine whose hooks are held cannot be renewed, and on Unicorn 2.1
   * keeps running in the virtual-TLB mode instead, where no access raises a
   * #PF (onTlbFill names the faults), at the cost of speed. (On 2.0 such an
   * engine would report its third fetch fault as 'engine-error'.)
   */
  private forgetPageFault(): void {
    if (this.renew()) return;
    if (UC_AT_LEAST_2_1 && !this.virtualTlb) {
      this.virtualTlb = true;
      this.internalHooks += this.addFaultHooks().length;
      check(uc.ctl(this.h(), UC_CTL_TLB_TYPE, 'int', UC_TLB_VIRTUAL), 'virtual TLB');
      this.flushTlb();
    }
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
    this.pageFault = undefined;
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
    // A run that an instruction count bounds (a quantum, a budget) ends by itself: no watchdog.
    const bounded = opts.quantum !== undefined || opts.budget !== undefined;
    const gen = opts.timeoutMs && !bounded ? watchdog.arm(this.address, opts.timeoutMs) : 0;
    try {
      const count = this.counting ? Math.min(opts.quantum ?? NO_QUANTUM, NO_QUANTUM) : 0;
      err = uc.emuStart(this.h(), opts.begin, opts.until, 0n, count) as number;
    } finally {
      if (gen) timedOut = watchdog.disarm(gen);
      if (budgetHook) this.removeHook(budgetHook);
    }
    const pf = this.pageFault as { rip: bigint; cr2: bigint } | undefined;
    if (pf) {
      const named = this.namePageFault(pf);
      this.writeReg('rip', pf.rip); // where the faulting instruction is, as on hardware
      this.forgetPageFault();
      throw this.fault(named.kind, named.address, `page fault at ${hex(pf.cr2)}`);
    }
    if (this.refusedPage) {
      // The refused page's TLB entry points at FAULT_PHYS: drop it before the next run.
      this.refusedPage = undefined;
      this.flushTlb();
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

  /**
   * Unicorn 2.0.1 leaves %rip at the start of the translation block when a
   * data access faults; the locator, given the registers the faulting
   * instruction saw, names the instruction (2.1 is exact already).
   */
  private locateDataFault: DataFaultLocator | undefined;

  private fault(kind: FaultKind, address: bigint, note: string): GuestFault {
    let rip = this.readReg('rip');
    const data = /^(unmapped|protection)-(read|write)$/.exec(kind);
    if (data && !UC_AT_LEAST_2_1 && this.locateDataFault) {
      const at = this.locateDataFault(rip, address, data[2] === 'write', this.registers());
      if (at !== undefined) this.writeReg('rip', (rip = at));
    }
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
