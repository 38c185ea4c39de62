// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The x86 encodings that code patching depends on, built and checked here
 * rather than trusted to the assembler (arch/x86/kernel/ftrace.c's
 * ftrace_call_replace / ftrace_jmp_replace / ftrace_nop_replace).
 */

export const MCOUNT_INSN_SIZE = 5;
/** P6 5-byte NOP, `nopl 0x0(%rax,%rax,1)`: what a disabled call site holds. */
export const FTRACE_NOP5 = Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00);
export const CALL_OPCODE = 0xe8;
export const JMP_OPCODE = 0xe9;
export const INT3_OPCODE = 0xcc;
/** `movq disp32(%rip), %rdx`: the op load that create_trampoline rewrites. */
export const OP_REF = Uint8Array.of(0x48, 0x8b, 0x15);
export const OP_REF_SIZE = 7;

export class RelReachError extends Error {
  constructor(
    readonly ip: bigint,
    readonly target: bigint,
  ) {
    super(`target ${hexU(target)} is beyond rel32 reach of ${hexU(ip)}`);
    this.name = 'RelReachError';
  }
}

function hexU(v: bigint): string {
  return '0x' + BigInt.asUintN(64, v).toString(16);
}

/** rel32 for an instruction at `ip` of `size` bytes jumping to `target`; throws when out of reach. */
export function rel32(ip: bigint, size: number, target: bigint): number {
  const d = BigInt.asIntN(64, target - (ip + BigInt(size)));
  if (d < -(1n << 31n) || d >= 1n << 31n) throw new RelReachError(ip, target);
  return Number(d);
}

export function inRel32Reach(ip: bigint, target: bigint, size = MCOUNT_INSN_SIZE): boolean {
  const d = BigInt.asIntN(64, target - (ip + BigInt(size)));
  return d >= -(1n << 31n) && d < 1n << 31n;
}

function branch(opcode: number, ip: bigint, target: bigint): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = opcode;
  new DataView(b.buffer).setInt32(1, rel32(ip, 5, target), true);
  return b;
}

/** `call target` placed at ip: e8 rel32. */
export function ftraceCallReplace(ip: bigint, target: bigint): Uint8Array {
  return branch(CALL_OPCODE, ip, target);
}

/** `jmp target` placed at ip: e9 rel32. */
export function ftraceJmpReplace(ip: bigint, target: bigint): Uint8Array {
  return branch(JMP_OPCODE, ip, target);
}

export function ftraceNopReplace(): Uint8Array {
  return FTRACE_NOP5.slice();
}

/** Decodes a 5-byte `e8`/`e9` rel32 at ip; undefined for anything else. */
export function decodeBranch(ip: bigint, bytes: Uint8Array): { kind: 'call' | 'jmp'; target: bigint } | undefined {
  if (bytes.length < 5 || (bytes[0] !== CALL_OPCODE && bytes[0] !== JMP_OPCODE)) return undefined;
  const disp = new DataView(bytes.buffer, bytes.byteOffset, 5).getInt32(1, true);
  return {
    kind: bytes[0] === CALL_OPCODE ? 'call' : 'jmp',
    target: BigInt.asUintN(64, ip + 5n + BigInt(disp)),
  };
}

export function isNop5(bytes: Uint8Array): boolean {
  return bytesEqual(bytes.subarray(0, 5), FTRACE_NOP5);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
