// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The instructions x86 ftrace writes (arch/x86/kernel/ftrace.c's
 * ftrace_call_replace / ftrace_jmp_replace / ftrace_nop_replace), and the
 * one it finds in ftrace_caller and rewrites in a trampoline.
 */
import { bytesEqual, encodeBranch } from '../../../asm/encoding.js';

/** A call site is one 5-byte instruction: `call __fentry__`, a call of a caller, or the NOP. */
export const MCOUNT_INSN_SIZE = 5;
/** P6 5-byte NOP, `nopl 0x0(%rax,%rax,1)`: what a disabled call site holds. */
export const FTRACE_NOP5 = Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00);
/** `movq disp32(%rip), %rdx`: the op load that create_trampoline rewrites. */
export const OP_REF = Uint8Array.of(0x48, 0x8b, 0x15);
export const OP_REF_SIZE = 7;

export function ftraceCallReplace(ip: bigint, target: bigint): Uint8Array {
  return encodeBranch('call', ip, target);
}

export function ftraceJmpReplace(ip: bigint, target: bigint): Uint8Array {
  return encodeBranch('jmp', ip, target);
}

export function ftraceNopReplace(): Uint8Array {
  return FTRACE_NOP5.slice();
}

export function isNop5(bytes: Uint8Array): boolean {
  return bytesEqual(bytes.subarray(0, MCOUNT_INSN_SIZE), FTRACE_NOP5);
}
