// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The x86 mechanism under ftrace (arch/x86/kernel/ftrace.c): how a call site
 * is turned into a NOP or a call, how ftrace_call is repointed, and how a
 * trampoline is made for one ftrace_ops (create_trampoline, as added in
 * v3.18). Policy (which site calls what) lives in kernel-model/ftrace/core.ts;
 * how bytes reach live code is the patcher's (patching.ts).
 */
import { disassemble, ripTarget } from '../../../asm/disasm.js';
import { bytesEqual, decodeBranch, rel32 } from '../../../asm/encoding.js';
import { hex, hexBytes } from '../../../emu/index.js';
import type { CallSiteInsn, CodeUpdate, FtraceArch, TrampolineLayout } from '../../ftrace/arch.js';
import type { FtraceOps } from '../../ftrace/ops.js';
import type { DynFtrace } from '../../ftrace/records.js';
import type { Kernel } from '../../kernel.js';
import { eraRules } from '../../ftrace/era.js';
import { CallSiteUpdate, JNZ_REL8, MCOUNT_INSN_SIZE, OP_REF, OP_REF_SIZE, RET_INSN, X86_NOP2, ftraceCallReplace, ftraceJmpReplace, isNop5 } from './insn.js';
import { DirectPatcher, makePatcher, type TextPatcher } from './patching.js';

export class X86Ftrace implements FtraceArch {
  readonly MCOUNT_INSN_SIZE = MCOUNT_INSN_SIZE;
  readonly MCOUNT_ADDR: bigint;
  readonly FTRACE_ADDR: bigint;
  readonly FTRACE_REGS_ADDR: bigint;
  private readonly patcher: TextPatcher;
  private readonly sym: (n: string) => bigint;

  constructor(
    private readonly kernel: Kernel,
    /** ftrace_location(): owned by the core, which keeps the records. */
    isFtraceLocation: (ip: bigint) => boolean,
    /** ftrace_ops_get_func(): what a trampoline's call must call. */
    private readonly opsGetFunc: (ops: FtraceOps) => bigint = (ops) => ops.func,
  ) {
    this.sym = (n) => kernel.symbols.addr(n);
    this.MCOUNT_ADDR = this.sym(kernel.config.callsites === 'mcount' ? 'mcount' : '__fentry__');
    this.FTRACE_ADDR = this.sym('ftrace_caller');
    this.FTRACE_REGS_ADDR = this.sym('ftrace_regs_caller');
    this.patcher = makePatcher(kernel.config.patching, kernel, isFtraceLocation);
  }

  get int3Hits(): number {
    return this.patcher.int3Hits;
  }

  private read(ip: bigint): Uint8Array {
    return this.kernel.memory.read(ip, MCOUNT_INSN_SIZE);
  }

  ftrace_replace_code(updates: readonly CodeUpdate[]): void {
    if (updates.length > 0) this.patcher.replace(updates);
  }

  make_call(rec: DynFtrace, addr: bigint): CodeUpdate {
    return new CallSiteUpdate(rec.ip, undefined, addr, 'make call');
  }

  make_nop(rec: DynFtrace, oldAddr: bigint): CodeUpdate {
    return new CallSiteUpdate(rec.ip, oldAddr, undefined, 'make nop');
  }

  modify_call(rec: DynFtrace, oldAddr: bigint, addr: bigint): CodeUpdate {
    return new CallSiteUpdate(rec.ip, oldAddr, addr, 'modify call');
  }

  ftrace_make_nop_at_boot(recs: readonly DynFtrace[]): void {
    new DirectPatcher(this.kernel).replaceUntilBug(recs.map((rec) => this.make_nop(rec, this.MCOUNT_ADDR)));
  }

  /** update_ftrace_func(): repoint a call whose current target we do not need to know. */
  private update_ftrace_func(ip: bigint, newCode: Uint8Array): void {
    this.ftrace_replace_code([{ ip, old: this.read(ip), new: newCode, operation: 'update ftrace func' }]);
  }

  ftrace_update_ftrace_func(func: bigint): void {
    for (const site of ['ftrace_call', 'ftrace_regs_call']) {
      const ip = this.sym(site);
      this.update_ftrace_func(ip, ftraceCallReplace(ip, func));
    }
  }

  /**
   * ftrace_mod_jmp(): the jmp at ftrace_graph_call is a patch site of its
   * own, changed by the same protocol as the call sites (on SMP, int3 first;
   * a CPU that hits it meanwhile skips it, which is the jmp to ftrace_stub).
   */
  private ftrace_mod_jmp(ip: bigint, func: bigint): void {
    const old = this.read(ip);
    const jmp = ftraceJmpReplace(ip, func);
    if (bytesEqual(old, jmp)) return;
    this.ftrace_replace_code([{ ip, old, new: jmp, operation: 'modify jmp' }]);
  }

  /** The era's rules: which entry code this layer patches. */
  private get era() {
    return eraRules(this.kernel.config.era);
  }

  ftrace_enable_ftrace_graph_caller(): void {
    // With DYNAMIC_FTRACE_WITH_ARGS (the modern kernels) the graph tracer is an ops: there is no ftrace_graph_call.
    if (!this.era.graphCall) return;
    this.ftrace_mod_jmp(this.sym('ftrace_graph_call'), this.sym('ftrace_graph_caller'));
  }

  ftrace_disable_ftrace_graph_caller(): void {
    if (!this.era.graphCall) return;
    this.ftrace_mod_jmp(this.sym('ftrace_graph_call'), this.sym('ftrace_stub'));
  }

  ftraceGraphCallTarget(): bigint | undefined {
    if (!this.era.graphCall) return undefined;
    const ip = this.sym('ftrace_graph_call');
    const br = decodeBranch(ip, this.read(ip));
    return br?.kind === 'jmp' ? br.target : undefined;
  }

  decodeCallSite(ip: bigint): CallSiteInsn {
    const bytes = this.read(ip);
    if (isNop5(bytes)) return { kind: 'nop' };
    const br = decodeBranch(ip, bytes);
    return br?.kind === 'call' ? { kind: 'call', target: br.target } : { kind: 'other', bytes };
  }

  private callTarget(ip: bigint): bigint | undefined {
    const insn = this.decodeCallSite(ip);
    return insn.kind === 'call' ? insn.target : undefined;
  }

  ftraceCallTarget(regs = false): bigint | undefined {
    return this.callTarget(this.sym(regs ? 'ftrace_regs_call' : 'ftrace_call'));
  }

  trampolineCallTarget(ops: FtraceOps): bigint | undefined {
    return this.callTarget(ops.trampoline + BigInt(this.calc_trampoline_call_offset(ops.hasFlag('SAVE_REGS'))));
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
   * `opOffset`, the call at `callOffset`, the era's tail at `size` (`jmp
   * ftrace_return`, or a RET), the ops pointer at `slotOffset`.
   */
  trampolineLayout(saveRegs: boolean): TrampolineLayout {
    if (!this.era.trampolines) throw new Error(`a ${this.era.version} kernel has no trampolines to lay out`);
    const caller = saveRegs ? 'ftrace_regs_caller' : 'ftrace_caller';
    const start = this.sym(caller);
    const size = Number(this.sym(`${caller}_end`) - start);
    const tail = this.era.trampolineEnd;
    const tailSize = tail === 'jmp' ? MCOUNT_INSN_SIZE : RET_INSN.length;
    return {
      caller,
      start,
      size,
      tail,
      tailSize,
      opOffset: Number(this.sym(`${caller}_op_ptr`) - start),
      callOffset: Number(this.sym(saveRegs ? 'ftrace_regs_call' : 'ftrace_call') - start),
      ...(saveRegs && this.era.regsCallerJmp ? { jmpOffset: Number(this.sym('ftrace_regs_caller_jmp') - start) } : {}),
      slotOffset: size + tailSize,
      total: size + tailSize + 8,
    };
  }

  /**
   * create_trampoline(): copy [ftrace_caller, ftrace_caller_end) (or the regs
   * variant) into module memory, append the era's tail, store the ops
   * pointer after it, and make the copied `movq function_trace_op(%rip),%rdx`
   * load that slot instead: the callback then gets this ops in %rdx without
   * any list walk. From v5.x the regs variant's direct-call jnz becomes a
   * NOP (a trampoline never serves direct calls), the call to the ops'
   * function is written here and the pages are made read-only. Returns
   * undefined when no trampoline can be made.
   */
  create_trampoline(ops: FtraceOps): { tramp: bigint; size: number } | undefined {
    const m = this.kernel.memory;
    const { caller, start, size, tail, opOffset, callOffset, jmpOffset, slotOffset, total } = this.trampolineLayout(ops.hasFlag('SAVE_REGS'));

    const tramp = this.alloc_tramp(total);
    if (tramp === undefined) return undefined;
    const fail = (why: string): undefined => {
      this.kernel.warn(`create_trampoline: ${why}; no trampoline for ${ops.name}`);
      this.tramp_free(tramp);
      return undefined;
    };

    const code = new Uint8Array(total);
    code.set(m.read(start, size), 0);
    // v3.x: the trampoline ends with a jmp to ftrace_return, where the
    // graph tracer's ftrace_graph_call follows; later a RET of its own.
    code.set(tail === 'jmp' ? ftraceJmpReplace(tramp + BigInt(size), this.sym('ftrace_return')) : RET_INSN, size);
    if (jmpOffset !== undefined) {
      // The kernel WARNs and gives up if the byte is not the jnz it expects.
      if (code[jmpOffset] !== JNZ_REL8) return fail(`ftrace_regs_caller_jmp at ${hex(start + BigInt(jmpOffset))} holds ${hexBytes(code.subarray(jmpOffset, jmpOffset + 1))}, not the jnz 75`);
      code.set(X86_NOP2, jmpOffset);
    }
    // The ops pointer sits after the tail and takes the place of function_trace_op.
    const ptr = tramp + BigInt(slotOffset);
    new DataView(code.buffer).setBigUint64(slotOffset, ops.addr, true);

    const opCode = code.subarray(opOffset, opOffset + OP_REF_SIZE);
    if (!bytesEqual(opCode.subarray(0, 3), OP_REF)) {
      return fail(`${caller}_op_ptr at ${hex(start + BigInt(opOffset))} holds ${hexBytes(opCode.subarray(0, 3))}, not the movq 48 8b 15`);
    }
    // Point the copied movq at the stored ops pointer.
    new DataView(code.buffer).setInt32(opOffset + 3, rel32(tramp + BigInt(opOffset), OP_REF_SIZE, ptr), true);
    // From v5.x the call is written now, before the pages become read-only.
    if (this.era.trampolineReadOnly) code.set(ftraceCallReplace(tramp + BigInt(callOffset), this.opsGetFunc(ops)), callOffset);

    // Written as text_poke() writes, through the kernel's own alias. In the
    // eras that set_memory_rox() their trampolines, module space is mapped
    // read-only for the guest (Kernel); v3.x's module_alloc() gave RWX pages.
    this.kernel.machine.textPoke(tramp, code);
    ops.setFlag('ALLOC_TRAMP', true);
    return { tramp, size: total };
  }

  /**
   * arch_ftrace_update_trampoline(): give an ops its trampoline (or reuse the
   * one it has) and point the trampoline's call at ops->func. v3.18: only
   * static ops get one, because nothing yet told when no task is still
   * running on a trampoline that would be freed; later eras wait for that
   * (KernelConfig.dynamicTrampolines). v5.x+: a new trampoline already calls
   * the right function; an existing one is changed through text_poke_bp().
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
      if (this.era.trampolineReadOnly) return;
    }
    const ip = ops.trampoline + BigInt(this.calc_trampoline_call_offset(ops.hasFlag('SAVE_REGS')));
    // The copied call still points where ftrace_call pointed: whatever it holds is "old".
    this.update_ftrace_func(ip, ftraceCallReplace(ip, this.opsGetFunc(ops)));
  }

  /**
   * Reads a trampoline back from module memory and checks it is what
   * create_trampoline() must have made: the caller copied byte for byte except
   * the op displacement and the call, `jmp ftrace_return` after it, the ops
   * pointer after that, the movq loading that pointer, the call reaching ops->func.
   */
  checkTrampoline(ops: FtraceOps): string[] {
    const problems: string[] = [];
    const tramp = ops.trampoline;
    if (tramp === 0n) return [`${ops.name} has no trampoline`];
    const m = this.kernel.memory;
    const { start, size, tail: tailKind, tailSize, opOffset: opOff, callOffset: callOff, jmpOffset, slotOffset } = this.trampolineLayout(ops.hasFlag('SAVE_REGS'));
    const orig = m.read(start, size);
    const copy = m.read(tramp, size);
    const nopped = (i: number) => jmpOffset !== undefined && i >= jmpOffset && i < jmpOffset + X86_NOP2.length;
    for (let i = 0; i < size; i++) {
      const patched = (i >= opOff + 3 && i < opOff + OP_REF_SIZE) || (i > callOff && i < callOff + MCOUNT_INSN_SIZE) || nopped(i);
      if (!patched && orig[i] !== copy[i]) {
        problems.push(`byte +0x${i.toString(16)} is ${copy[i]!.toString(16)}, the caller has ${orig[i]!.toString(16)}`);
        break;
      }
    }
    if (!bytesEqual(copy.subarray(opOff, opOff + 3), OP_REF)) problems.push(`op load at +0x${opOff.toString(16)} is ${hexBytes(copy.subarray(opOff, opOff + 3))}, not 48 8b 15`);
    const slot = tramp + BigInt(slotOffset);
    const [mov] = disassemble(copy.subarray(opOff), tramp + BigInt(opOff), 1);
    const loads = mov ? ripTarget(mov) : undefined;
    if (loads !== slot) problems.push(`the op load reads ${loads === undefined ? 'nothing' : hex(loads)}, not the ops slot at ${hex(slot)}`);
    if (m.readU64(slot) !== ops.addr) problems.push(`the ops slot holds ${hex(m.readU64(slot))}, not ${ops.name} at ${hex(ops.addr)}`);
    if (jmpOffset !== undefined && !bytesEqual(copy.subarray(jmpOffset, jmpOffset + X86_NOP2.length), X86_NOP2)) {
      problems.push(`ftrace_regs_caller's jnz at +0x${jmpOffset.toString(16)} is ${hexBytes(copy.subarray(jmpOffset, jmpOffset + 2))}, not the 2-byte NOP 66 90`);
    }
    const tailBytes = m.read(tramp + BigInt(size), tailSize);
    if (tailKind === 'ret') {
      if (!bytesEqual(tailBytes, RET_INSN)) problems.push(`the trampoline does not end with a RET (it has ${hexBytes(tailBytes)})`);
    } else {
      const tail = decodeBranch(tramp + BigInt(size), tailBytes);
      if (!tail || tail.kind !== 'jmp' || tail.target !== this.sym('ftrace_return')) problems.push('the trampoline does not end with jmp ftrace_return');
    }
    if (this.era.trampolineReadOnly && this.kernel.memory.pageTables.walk(tramp)?.perms.write !== false) problems.push('the trampoline is writable: set_memory_rox() should have made it read-only');
    const call = decodeBranch(tramp + BigInt(callOff), m.read(tramp + BigInt(callOff), MCOUNT_INSN_SIZE));
    const want = this.opsGetFunc(ops);
    if (!call || call.kind !== 'call' || call.target !== want) {
      const what = want === ops.func ? `${ops.name}'s func` : (this.kernel.symbolize(want) ?? hex(want));
      problems.push(`the trampoline's call goes to ${call ? (this.kernel.symbolize(call.target) ?? hex(call.target)) : 'nothing'}, not ${what}`);
    }
    return problems;
  }

  /** arch_ftrace_trampoline_free(): only trampolines this layer allocated. */
  arch_ftrace_trampoline_free(ops: FtraceOps): void {
    if (!ops.trampoline || !ops.hasFlag('ALLOC_TRAMP')) return;
    this.kernel.symbols.remove(trampolineSymbol(ops));
    // Fill with int3 so a stale call into freed memory traps rather than runs old code.
    const size = ops.trampolineSize;
    this.kernel.machine.textPoke(ops.trampoline, new Uint8Array(size).fill(0xcc));
    this.tramp_free(ops.trampoline);
    ops.trampoline = 0n;
    ops.trampolineSize = 0;
    ops.setFlag('ALLOC_TRAMP', false);
  }
}

export function trampolineSymbol(ops: FtraceOps): string {
  return `ftrace_trampoline[${ops.name}]`;
}
