// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What ftrace's core asks of an architecture: the arch hooks of
 * kernel/trace/ftrace.c (ftrace_make_nop, ftrace_make_call,
 * ftrace_modify_call, ftrace_update_ftrace_func, ftrace_replace_code,
 * arch_ftrace_update_trampoline, arch_ftrace_trampoline_free), and a way to
 * read back what a call site does. x86 (arch/x86/ftrace.ts) is the one
 * implementation; every encoding lives there.
 */
import { hex, hexBytes } from '../../emu/index.js';
import type { FtraceOps } from './ops.js';
import type { DynFtrace } from './records.js';

/** One site's change: the bytes it must hold now, and those it will hold. */
export interface CodeUpdate {
  ip: bigint;
  old: Uint8Array;
  new: Uint8Array;
  operation: string;
}

/** What a call site holds, decoded from guest memory. */
export type CallSiteInsn = { kind: 'nop' } | { kind: 'call'; target: bigint } | { kind: 'other'; bytes: Uint8Array };

/** Where things sit in a trampoline, and the caller it is copied from. */
export interface TrampolineLayout {
  caller: 'ftrace_caller' | 'ftrace_regs_caller';
  start: bigint;
  /** Bytes copied from the caller; the appended tail sits here. */
  size: number;
  /** What create_trampoline() appends: `jmp ftrace_return` (v3.x) or a RET (v5.x+). */
  tail: 'jmp' | 'ret';
  /** The tail's length: the ops pointer follows it. */
  tailSize: number;
  /** ftrace_regs_caller's direct-call jnz that a trampoline turns into a 2-byte NOP (v5.9+). */
  jmpOffset?: number;
  /** The op load whose displacement is rewritten. */
  opOffset: number;
  /** The copied call of ftrace_call (ftrace_regs_call), repointed at ops->func. */
  callOffset: number;
  /** The ops pointer the rewritten op load reads. */
  slotOffset: number;
  total: number;
}

/** ftrace_bug(): a site did not hold the bytes the kernel expected to replace. */
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

export interface FtraceArch {
  /** The size of a call site's instruction: regs->ip is the site plus this. */
  readonly MCOUNT_INSN_SIZE: number;
  /** What the compiler's call sites call (__fentry__), and the two shared callers. */
  readonly MCOUNT_ADDR: bigint;
  readonly FTRACE_ADDR: bigint;
  readonly FTRACE_REGS_ADDR: bigint;
  /** Times a CPU hit a site while the patching protocol had it half-written. */
  readonly int3Hits: number;

  /** ftrace_make_nop / ftrace_make_call / ftrace_modify_call: the change one record needs. */
  make_nop(rec: DynFtrace, oldAddr: bigint): CodeUpdate;
  make_call(rec: DynFtrace, addr: bigint): CodeUpdate;
  modify_call(rec: DynFtrace, oldAddr: bigint, addr: bigint): CodeUpdate;
  /** ftrace_update_code() at boot: every `call __fentry__` to the NOP, written directly. */
  ftrace_make_nop_at_boot(recs: readonly DynFtrace[]): void;
  /** ftrace_replace_code(): apply a batch with the kernel's patching protocol. */
  ftrace_replace_code(updates: readonly CodeUpdate[]): void;
  /** ftrace_update_ftrace_func(): point ftrace_call (and ftrace_regs_call) at func. */
  ftrace_update_ftrace_func(func: bigint): void;

  /** ftrace_enable_ftrace_graph_caller / ftrace_disable_ftrace_graph_caller: the jmp at ftrace_graph_call. */
  ftrace_enable_ftrace_graph_caller(): void;
  ftrace_disable_ftrace_graph_caller(): void;
  /** Where ftrace_graph_call jumps now. */
  ftraceGraphCallTarget(): bigint | undefined;

  arch_ftrace_update_trampoline(ops: FtraceOps): void;
  arch_ftrace_trampoline_free(ops: FtraceOps): void;
  trampolineLayout(saveRegs: boolean): TrampolineLayout;
  /** What a trampoline's copied call calls now. */
  trampolineCallTarget(ops: FtraceOps): bigint | undefined;
  /** Reads a trampoline back and lists every way it differs from what create_trampoline makes. */
  checkTrampoline(ops: FtraceOps): string[];

  /** Decodes the instruction at a call site (or at ftrace_call). */
  decodeCallSite(ip: bigint): CallSiteInsn;
  /** What ftrace_call (or, for `regs`, ftrace_regs_call) calls now. */
  ftraceCallTarget(regs?: boolean): bigint | undefined;
}
