// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The instructions x86 ftrace writes (arch/x86/kernel/ftrace.c's
 * ftrace_call_replace / ftrace_jmp_replace / ftrace_nop_replace), and the
 * one it finds in ftrace_caller and rewrites in a trampoline.
 */
import { BRANCH_SIZE, CALL_OPCODE, bytesEqual, encodeBranch, rel32 } from '../../../asm/encoding.js';
import type { CodeUpdate } from '../../ftrace/arch.js';

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

/** The one shared NOP: updates only read their bytes, and a copy per site is 50,000 allocations at scale. */
export function ftraceNopReplace(): Uint8Array {
  return FTRACE_NOP5;
}

export function isNop5(bytes: Uint8Array): boolean {
  return bytesEqual(bytes.subarray(0, MCOUNT_INSN_SIZE), FTRACE_NOP5);
}

function callBytes(rel: number): Uint8Array {
  return Uint8Array.of(CALL_OPCODE, rel & 0xff, (rel >>> 8) & 0xff, (rel >>> 16) & 0xff, (rel >>> 24) & 0xff);
}

/**
 * A call site's change between the NOP and `call target`, as few bytes of
 * host memory as it can be: a batch holds one per site until it is written
 * (50,000 at scale), so it keeps the two rel32s and builds the bytes when a
 * patcher reads them (short-lived, cheap to collect). Reach is checked here,
 * when the update is made, as ftrace_call_replace() would.
 */
export class CallSiteUpdate implements CodeUpdate {
  private readonly oldRel: number;
  private readonly newRel: number;

  constructor(
    readonly ip: bigint,
    /** undefined: the site holds the NOP. */
    oldTarget: bigint | undefined,
    newTarget: bigint | undefined,
    readonly operation: string,
  ) {
    this.oldRel = oldTarget === undefined ? NaN : rel32(ip, BRANCH_SIZE, oldTarget);
    this.newRel = newTarget === undefined ? NaN : rel32(ip, BRANCH_SIZE, newTarget);
  }

  get old(): Uint8Array {
    return Number.isNaN(this.oldRel) ? FTRACE_NOP5 : callBytes(this.oldRel);
  }

  get new(): Uint8Array {
    return Number.isNaN(this.newRel) ? FTRACE_NOP5 : callBytes(this.newRel);
  }
}

/** `ret`: what a v5.x+ trampoline ends with (RET_SIZE without return thunks). */
export const RET_INSN = Uint8Array.of(0xc3);
/** `jnz rel8`'s opcode: ftrace_regs_caller's direct-call branch. */
export const JNZ_REL8 = 0x75;
/** x86_nops[2], `xchg %ax,%ax`: what a trampoline holds instead of that jnz. */
export const X86_NOP2 = Uint8Array.of(0x66, 0x90);
