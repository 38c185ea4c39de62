// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The x86 mechanism under ftrace (arch/x86/kernel/ftrace.c): how a call site
 * is turned into a NOP or a call, how ftrace_call is repointed, and how a
 * trampoline is made for one ftrace_ops (the seed patch's create_trampoline).
 * Policy (which site calls what) lives in kernel-model/ftrace/core.ts.
 */
import {
  INT3_OPCODE,
  MCOUNT_INSN_SIZE,
  decodeBranch,
  OP_REF,
  OP_REF_SIZE,
  bytesEqual,
  ftraceCallReplace,
  ftraceJmpReplace,
  ftraceNopReplace,
  hexBytes,
  rel32,
} from '../../../asm/encoding.js';
import { hex, type Engine, type InterruptVerdict } from '../../../emu/index.js';
import type { Kernel } from '../../kernel.js';
import type { DynFtrace } from '../../ftrace/records.js';
import type { FtraceOps } from '../../ftrace/ops.js';

/** ftrace_bug(): a call site did not hold the bytes the kernel expected. */
export class FtraceBugError extends Error {
  constructor(
    readonly ip: bigint,
    readonly symbol: string | undefined,
    readonly expected: Uint8Array,
    readonly actual: Uint8Array,
    readonly operation: string,
  ) {
    super(
      `ftrace failed to modify [<${hex(ip)}>] ${symbol ?? '?'} (${operation})\n` +
        ` actual:   ${hexBytes(actual)}\n expected: ${hexBytes(expected)}`,
    );
    this.name = 'FtraceBugError';
  }
}

/** Offsets in a trampoline, and the caller it is copied from (X86Ftrace.trampolineLayout). */
export interface TrampolineLayout {
  caller: 'ftrace_caller' | 'ftrace_regs_caller';
  start: bigint;
  size: number;
  opOffset: number;
  callOffset: number;
  slotOffset: number;
  total: number;
}

/** One site's change: the bytes it must hold now, and those it will hold. */
export interface CodeUpdate {
  ip: bigint;
  old: Uint8Array;
  new: Uint8Array;
  operation: string;
}

export class X86Ftrace {
  /** modifying_ftrace_code: non-zero while int3s may be on sites. */
  private modifying = 0;
  /** The sites being changed, with the bytes they will hold. */
  private readonly inProgress = new Map<bigint, Uint8Array>();
  /** How often a CPU hit one of our int3s. */
  int3Hits = 0;
  /** ftrace_location(): set by the core, which owns the records. */
  isFtraceLocation: (ip: bigint) => boolean = () => false;
  /** MCOUNT_ADDR: what the compiler's call sites call. */
  readonly MCOUNT_ADDR: bigint;
  /** FTRACE_ADDR and FTRACE_REGS_ADDR: the shared callers. */
  readonly FTRACE_ADDR: bigint;
  readonly FTRACE_REGS_ADDR: bigint;
  private readonly sym: (n: string) => bigint;

  constructor(private readonly kernel: Kernel) {
    this.sym = (n) => kernel.symbols.addr(n);
    this.MCOUNT_ADDR = this.sym('__fentry__');
    this.FTRACE_ADDR = this.sym('ftrace_caller');
    this.FTRACE_REGS_ADDR = this.sym('ftrace_regs_caller');
    for (const cpu of kernel.cpus) cpu.addInterruptHook((n, c) => (n === 3 ? this.ftrace_int3_handler(c) : 'unhandled'));
  }

  private read(ip: bigint): Uint8Array {
    return this.kernel.memory.read(ip, MCOUNT_INSN_SIZE);
  }

  /**
   * ftrace_modify_code_direct(), for a batch: check that every site holds its
   * `old` bytes, write the `new` ones, and drop every CPU's translations of
   * them. For boot, and for a kernel whose other CPUs never run meanwhile.
   */
  ftrace_modify_code_direct(updates: readonly CodeUpdate[]): void {
    for (const u of updates) this.verify(u);
    for (const u of updates) this.kernel.memory.write(u.ip, u.new);
    this.kernel.syncCores(updates.map((u) => [u.ip, u.ip + 5n] as const), false);
  }

  private verify(u: CodeUpdate): void {
    const actual = this.read(u.ip);
    if (!bytesEqual(actual, u.old)) throw new FtraceBugError(u.ip, this.kernel.symbolize(u.ip), u.old, actual, u.operation);
  }

  /** ftrace_modify_code(): one site, while other CPUs may be running it. */
  ftrace_modify_code(ip: bigint, oldCode: Uint8Array, newCode: Uint8Array, operation: string): void {
    this.ftrace_replace_code([{ ip, old: oldCode, new: newCode, operation }]);
  }

  /**
   * ftrace_replace_code(): change many sites, as the kernel's patching mode
   * says (KernelConfig.patching):
   *  - direct: check and write each site (one CPU: nothing else runs);
   *  - int3: the seed era's three passes, each followed by run_sync() on every
   *    CPU, with the other CPUs running between passes: an int3 on each site,
   *    then bytes 1-4, then byte 0. A CPU that hits a site's int3 meanwhile
   *    is handled by ftrace_int3_handler();
   *  - naive: write each site's five bytes in place, one at a time, with the
   *    other CPUs running in between: what the protocol exists to prevent.
   */
  ftrace_replace_code(updates: readonly CodeUpdate[]): void {
    if (updates.length === 0) return;
    const k = this.kernel;
    const ranges = updates.map((u) => [u.ip, u.ip + 5n] as const);
    switch (k.config.patching) {
      case 'direct':
        return this.ftrace_modify_code_direct(updates);
      case 'naive':
        for (const u of updates) {
          this.verify(u);
          for (let i = 0; i < 5; i++) {
            k.memory.write(u.ip + BigInt(i), u.new.subarray(i, i + 1));
            k.syncCores([[u.ip, u.ip + 5n]]);
          }
        }
        return;
      case 'int3': {
        this.modifying++;
        const done: CodeUpdate[] = [];
        try {
          for (const u of updates) {
            this.verify(u);
            k.memory.write(u.ip, Uint8Array.of(INT3_OPCODE)); // add_breakpoints
            this.inProgress.set(u.ip, u.new);
            done.push(u);
          }
        } catch (e) {
          for (const u of done) k.memory.write(u.ip, u.old.subarray(0, 1)); // remove_breakpoints
          k.syncCores(ranges, false);
          this.inProgress.clear();
          this.modifying--;
          throw e;
        }
        k.syncCores(ranges);
        for (const u of updates) k.memory.write(u.ip + 1n, u.new.subarray(1, 5)); // add_update
        k.syncCores(ranges);
        for (const u of updates) k.memory.write(u.ip, u.new.subarray(0, 1)); // finish_update
        k.syncCores(ranges);
        this.inProgress.clear();
        this.modifying--;
        return;
      }
    }
  }

  /** The change that makes a NOP site call addr (ftrace_make_call). */
  make_call(rec: DynFtrace, addr: bigint): CodeUpdate {
    return { ip: rec.ip, old: ftraceNopReplace(), new: ftraceCallReplace(rec.ip, addr), operation: 'make call' };
  }

  /** The change that turns a call of oldAddr into the NOP (ftrace_make_nop). */
  make_nop(rec: DynFtrace, oldAddr: bigint): CodeUpdate {
    return { ip: rec.ip, old: ftraceCallReplace(rec.ip, oldAddr), new: ftraceNopReplace(), operation: 'make nop' };
  }

  /** The change from calling oldAddr to calling addr (ftrace_modify_call). */
  modify_call(rec: DynFtrace, oldAddr: bigint, addr: bigint): CodeUpdate {
    return { ip: rec.ip, old: ftraceCallReplace(rec.ip, oldAddr), new: ftraceCallReplace(rec.ip, addr), operation: 'modify call' };
  }

  /** At boot (ftrace_update_code): every `call __fentry__` to the NOP, directly. */
  ftrace_make_nop_at_boot(recs: readonly DynFtrace[]): void {
    this.ftrace_modify_code_direct(
      recs.map((rec) => ({ ip: rec.ip, old: ftraceCallReplace(rec.ip, this.MCOUNT_ADDR), new: ftraceNopReplace(), operation: 'make nop' })),
    );
  }

  /** update_ftrace_func(): repoint a call whose current target we do not need to know. */
  private update_ftrace_func(ip: bigint, newCode: Uint8Array): void {
    this.ftrace_modify_code(ip, this.read(ip), newCode, 'update ftrace func');
  }

  /**
   * ftrace_int3_handler(): a CPU hit an int3 that ftrace put on a site it is
   * changing. Seed era: the site behaves as a 5-byte NOP (this call is not
   * traced). Modern era (text_poke_bp): the new instruction is emulated.
   */
  private ftrace_int3_handler(cpu: Engine): InterruptVerdict {
    if (this.modifying === 0) return 'unhandled';
    const site = cpu.readReg('rip') - 1n;
    const next = this.inProgress.get(site);
    if (!next && !this.isFtraceLocation(site)) return 'unhandled';
    this.int3Hits++;
    const branch = next && this.kernel.config.era === 'modern' ? decodeBranch(site, next) : undefined;
    if (branch?.kind === 'call') {
      const rsp = cpu.readReg('rsp') - 8n;
      this.kernel.memory.writeU64(rsp, site + 5n);
      cpu.writeReg('rsp', rsp);
      cpu.writeReg('rip', branch.target);
    } else if (branch?.kind === 'jmp') cpu.writeReg('rip', branch.target);
    else cpu.writeReg('rip', site + 5n);
    return 'handled';
  }

  /** ftrace_update_ftrace_func(): both shared callers call `func`. */
  ftrace_update_ftrace_func(func: bigint): void {
    for (const site of ['ftrace_call', 'ftrace_regs_call']) {
      const ip = this.sym(site);
      this.update_ftrace_func(ip, ftraceCallReplace(ip, func));
    }
  }

  /** The target of the 5-byte call at ip (ftrace_call, a call site, a trampoline's call). */
  callTarget(ip: bigint): bigint | undefined {
    const b = this.read(ip);
    if (b[0] !== 0xe8) return undefined;
    return BigInt.asUintN(64, ip + 5n + BigInt(new DataView(b.buffer, b.byteOffset).getInt32(1, true)));
  }

  /* Trampolines live in module space: module_alloc() keeps them in rel32 reach of the text. */
  private alloc_tramp(size: number): bigint | undefined {
    return this.kernel.moduleSpace?.alloc(size);
  }

  private tramp_free(tramp: bigint): void {
    this.kernel.moduleSpace?.release(tramp);
  }

  /** Where, inside a trampoline, the copied ftrace_call (or ftrace_regs_call) sits. */
  calc_trampoline_call_offset(saveRegs: boolean): number {
    return this.trampolineLayout(saveRegs).callOffset;
  }

  /**
   * Where things sit in a trampoline made from ftrace_caller (or, for
   * SAVE_REGS, ftrace_regs_caller): `size` bytes copied, the op load at
   * `opOffset`, the call at `callOffset`, `jmp ftrace_return` at `size`, the
   * ops pointer at `slotOffset`.
   */
  trampolineLayout(saveRegs: boolean): TrampolineLayout {
    const caller = saveRegs ? 'ftrace_regs_caller' : 'ftrace_caller';
    const start = this.sym(caller);
    const size = Number(this.sym(`${caller}_end`) - start);
    return {
      caller,
      start,
      size,
      opOffset: Number(this.sym(`${caller}_op_ptr`) - start),
      callOffset: Number(this.sym(saveRegs ? 'ftrace_regs_call' : 'ftrace_call') - start),
      slotOffset: size + MCOUNT_INSN_SIZE,
      total: size + MCOUNT_INSN_SIZE + 8,
    };
  }

  /**
   * create_trampoline(): copy [ftrace_caller, ftrace_caller_end) (or the regs
   * variant) into module memory, append `jmp ftrace_return`, store the ops
   * pointer after it, and make the copied `movq function_trace_op(%rip),%rdx`
   * load that slot instead: the callback then gets this ops in %rdx without
   * any list walk. Returns 0 when no trampoline can be made.
   */
  create_trampoline(ops: FtraceOps): { tramp: bigint; size: number } | undefined {
    const m = this.kernel.memory;
    const { caller, start, size, opOffset, slotOffset, total } = this.trampolineLayout(ops.hasFlag('SAVE_REGS'));

    const tramp = this.alloc_tramp(total);
    if (tramp === undefined) return undefined;

    const code = new Uint8Array(total);
    code.set(m.read(start, size), 0);
    // The trampoline ends with a jmp to ftrace_return.
    code.set(ftraceJmpReplace(tramp + BigInt(size), this.sym('ftrace_return')), size);
    // The ops pointer sits after the jmp and takes the place of function_trace_op.
    const ptr = tramp + BigInt(slotOffset);
    new DataView(code.buffer).setBigUint64(slotOffset, ops.addr, true);

    const opCode = code.subarray(opOffset, opOffset + OP_REF_SIZE);
    if (!bytesEqual(opCode.subarray(0, 3), OP_REF)) {
      this.kernel.warn(
        `create_trampoline: ${caller}_op_ptr at ${hex(start + BigInt(opOffset))} ` +
          `holds ${hexBytes(opCode.subarray(0, 3))}, not the movq 48 8b 15; no trampoline for ${ops.name}`,
      );
      this.tramp_free(tramp);
      return undefined;
    }
    // Point the copied movq at the stored ops pointer.
    new DataView(code.buffer).setInt32(opOffset + 3, rel32(tramp + BigInt(opOffset), OP_REF_SIZE, ptr), true);

    this.kernel.textPoke(tramp, code);
    ops.setFlag('ALLOC_TRAMP', true);
    return { tramp, size: total };
  }

  /**
   * arch_ftrace_update_trampoline(): give a static ops its trampoline (or
   * reuse the one it has) and point the trampoline's call at ops->func.
   * Seed rule: dynamically allocated ops get none, because nothing yet tells
   * when no task is still running on a trampoline that would be freed
   * (KernelConfig.dynamicTrampolines lifts it, for the later kernels' answers).
   */
  arch_ftrace_update_trampoline(ops: FtraceOps): void {
    if (ops.hasFlag('DYNAMIC') && !this.kernel.config.dynamicTrampolines) return;
    if (ops.trampoline !== 0n) {
      if (!ops.hasFlag('ALLOC_TRAMP')) return; // someone else's static trampoline
    } else {
      const t = this.create_trampoline(ops);
      if (!t) return;
      ops.trampoline = t.tramp;
      ops.trampolineSize = t.size;
      this.kernel.symbols.add({ name: trampolineSymbol(ops), address: t.tramp, size: t.size });
    }
    const ip = ops.trampoline + BigInt(this.calc_trampoline_call_offset(ops.hasFlag('SAVE_REGS')));
    // The copied call still points where ftrace_call pointed: whatever it holds is "old".
    this.update_ftrace_func(ip, ftraceCallReplace(ip, ops.func));
  }

  /** arch_ftrace_trampoline_free(): only trampolines this layer allocated. */
  arch_ftrace_trampoline_free(ops: FtraceOps): void {
    if (!ops.trampoline || !ops.hasFlag('ALLOC_TRAMP')) return;
    this.kernel.symbols.remove(trampolineSymbol(ops));
    // Fill with int3 so a stale call into freed memory traps rather than runs old code.
    const size = ops.trampolineSize;
    this.kernel.textPoke(ops.trampoline, new Uint8Array(size).fill(0xcc));
    this.tramp_free(ops.trampoline);
    ops.trampoline = 0n;
    ops.trampolineSize = 0;
    ops.setFlag('ALLOC_TRAMP', false);
  }
}

export function trampolineSymbol(ops: FtraceOps): string {
  return `ftrace_trampoline[${ops.name}]`;
}
