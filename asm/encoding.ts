// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * x86-64 branch encodings that code patching depends on, built and checked
 * here rather than trusted to the assembler: `e8`/`e9` with a rel32 that must
 * reach, and their decoding. (What ftrace builds from them is in
 * kernel-model/arch/x86/insn.ts.)
 */
import { hex } from '../emu/hex.js';

export const CALL_OPCODE = 0xe8;
export const JMP_OPCODE = 0xe9;
export const INT3_OPCODE = 0xcc;
/** `e8`/`e9` + rel32. */
export const BRANCH_SIZE = 5;
const BRANCH_SIZE_N = 5n;

export class RelReachError extends Error {
  constructor(
    readonly ip: bigint,
    readonly target: bigint,
  ) {
    super(`target ${hex(target)} is beyond rel32 reach of ${hex(ip)}`);
    this.name = 'RelReachError';
  }
}

const REL32_MIN = -(1n << 31n);
const REL32_MAX = (1n << 31n) - 1n;

/** rel32 for an instruction at `ip` of `size` bytes jumping to `target`; throws when out of reach. */
export function rel32(ip: bigint, size: number, target: bigint): number {
  // Few BigInt temporaries: each one is a heap allocation, and patching at scale does this 100,000 times.
  const d = BigInt.asIntN(64, target - ip - (size === BRANCH_SIZE ? BRANCH_SIZE_N : BigInt(size)));
  if (d < REL32_MIN || d > REL32_MAX) throw new RelReachError(ip, target);
  return Number(d);
}

export function inRel32Reach(ip: bigint, target: bigint, size = BRANCH_SIZE): boolean {
  const d = BigInt.asIntN(64, target - (ip + BigInt(size)));
  return d >= -(1n << 31n) && d < 1n << 31n;
}

/** `call`/`jmp target` placed at ip: e8/e9 rel32. */
export function encodeBranch(kind: 'call' | 'jmp', ip: bigint, target: bigint): Uint8Array {
  const b = new Uint8Array(BRANCH_SIZE);
  encodeBranchInto(b, 0, kind, ip, target);
  return b;
}

/** encodeBranch() written into `out` at `at`: no allocation (patching 50,000 sites encodes 100,000 of these). */
export function encodeBranchInto(out: Uint8Array, at: number, kind: 'call' | 'jmp', ip: bigint, target: bigint): void {
  const d = rel32(ip, BRANCH_SIZE, target);
  out[at] = kind === 'call' ? CALL_OPCODE : JMP_OPCODE;
  out[at + 1] = d & 0xff;
  out[at + 2] = (d >>> 8) & 0xff;
  out[at + 3] = (d >>> 16) & 0xff;
  out[at + 4] = (d >>> 24) & 0xff;
}

/** Decodes a 5-byte `e8`/`e9` rel32 at ip; undefined for anything else. */
export function decodeBranch(ip: bigint, bytes: Uint8Array): { kind: 'call' | 'jmp'; target: bigint } | undefined {
  if (bytes.length < BRANCH_SIZE || (bytes[0] !== CALL_OPCODE && bytes[0] !== JMP_OPCODE)) return undefined;
  const disp = new DataView(bytes.buffer, bytes.byteOffset, BRANCH_SIZE).getInt32(1, true);
  return {
    kind: bytes[0] === CALL_OPCODE ? 'call' : 'jmp',
    target: BigInt.asUintN(64, ip + BigInt(BRANCH_SIZE) + BigInt(disp)),
  };
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
