// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A check made from what the guest holds: the bytes of a trampoline. (The
 * checks of callback invocations are in kernel-model/check-events.ts.)
 */
import { disassemble, ripTarget } from '../../asm/disasm.js';
import { OP_REF, bytesEqual, decodeBranch, hexBytes } from '../../asm/encoding.js';
import { hex } from '../../emu/index.js';
import type { X86Ftrace } from '../../kernel-model/arch/x86/ftrace.js';
import type { FtraceOps } from '../../kernel-model/ftrace/ops.js';
import type { Kernel } from '../../kernel-model/kernel.js';

/**
 * Reads a trampoline back from module memory and checks it is what
 * create_trampoline() must have made: the caller copied byte for byte except
 * the op displacement and the call, `jmp ftrace_return` after it, the ops
 * pointer after that, the movq loading that pointer, the call reaching ops->func.
 */
export function verifyTrampoline(kernel: Kernel, arch: X86Ftrace, ops: FtraceOps): string[] {
  const problems: string[] = [];
  const tramp = ops.trampoline;
  if (tramp === 0n) return [`${ops.name} has no trampoline`];
  const { start, size, opOffset: opOff, callOffset: callOff, slotOffset } = arch.trampolineLayout(ops.hasFlag('SAVE_REGS'));
  const s = (n: string) => kernel.symbols.addr(n);
  const orig = kernel.memory.read(start, size);
  const copy = kernel.memory.read(tramp, size);
  for (let i = 0; i < size; i++) {
    const patched = (i >= opOff + 3 && i < opOff + 7) || (i > callOff && i < callOff + 5);
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
  if (kernel.memory.readU64(slot) !== ops.addr) problems.push(`the ops slot holds ${hex(kernel.memory.readU64(slot))}, not ${ops.name} at ${hex(ops.addr)}`);
  const tail = decodeBranch(tramp + BigInt(size), kernel.memory.read(tramp + BigInt(size), 5));
  if (!tail || tail.kind !== 'jmp' || tail.target !== s('ftrace_return')) problems.push('the trampoline does not end with jmp ftrace_return');
  const call = decodeBranch(tramp + BigInt(callOff), kernel.memory.read(tramp + BigInt(callOff), 5));
  if (!call || call.kind !== 'call' || call.target !== ops.func) {
    problems.push(`the trampoline's call goes to ${call ? (kernel.symbolize(call.target) ?? hex(call.target)) : 'nothing'}, not ${ops.name}'s func`);
  }
  return problems;
}
