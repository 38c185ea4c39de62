// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A disassembler view over Capstone (npm @alexaltea/capstone-js), in AT&T
 * syntax, with kernel addresses as unsigned hex and branch targets named.
 * Capstone hands kernel addresses back as negative numbers: masked here.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface CsInsn {
  address: bigint | number;
  size: number;
  mnemonic: string;
  op_str: string;
  bytes: number[];
}
interface CsHandle {
  disasm(code: Uint8Array | number[], address: bigint | number, count?: number): CsInsn[];
  option(opt: number, value: number): void;
  close(): void;
}
interface CsModule {
  Capstone: new (arch: number, mode: number) => CsHandle;
  ARCH_X86: number;
  MODE_64: number;
  OPT_SYNTAX: number;
  OPT_SYNTAX_ATT: number;
}

export interface Insn {
  address: bigint;
  bytes: Uint8Array;
  mnemonic: string;
  operands: string;
  /** For direct calls and jumps: the target. */
  target: bigint | undefined;
}

let cs: CsHandle | undefined;

/** Whether initDisassembler() has finished. */
export function disassemblerReady(): boolean {
  return cs !== undefined;
}

export async function initDisassembler(): Promise<void> {
  if (cs) return;
  const factory = require('@alexaltea/capstone-js') as { default: () => Promise<CsModule> };
  const m = await factory.default();
  cs = new m.Capstone(m.ARCH_X86, m.MODE_64);
  cs.option(m.OPT_SYNTAX ?? 1, m.OPT_SYNTAX_ATT ?? 2);
}

const TARGET_RE = /^\$?(-?0x[0-9a-f]+)$/;

/** Capstone prints upper-half addresses as `-0x7effff00`: read them back as unsigned. */
function parseSignedHex(s: string): bigint {
  const neg = s.startsWith('-');
  const v = BigInt(neg ? s.slice(1) : s);
  return BigInt.asUintN(64, neg ? -v : v);
}

export function isDisassemblerReady(): boolean {
  return cs !== undefined;
}

export function disassemble(code: Uint8Array, address: bigint, count?: number): Insn[] {
  if (!cs) throw new Error('initDisassembler() must be awaited first');
  // Capstone wants a signed 64-bit address for the upper half.
  const raw = cs.disasm(code, BigInt.asIntN(64, address), count ?? 0);
  return raw.map((i) => {
    const mnemonic = i.mnemonic;
    let target: bigint | undefined;
    const branch = /^(call|jmp|j[a-z]+)q?$/.test(mnemonic) ? TARGET_RE.exec(i.op_str.trim()) : null;
    if (branch) target = parseSignedHex(branch[1]!);
    return {
      address: BigInt.asUintN(64, BigInt(i.address)),
      bytes: Uint8Array.from(i.bytes),
      mnemonic,
      operands: i.op_str.replace(/-0x[0-9a-f]{8,16}\b/g, (m) => '0x' + parseSignedHex(m).toString(16)),
      target,
    };
  });
}

export type Symbolize = (address: bigint) => string | undefined;

const RIP_REL = /(-?0x[0-9a-f]+)\(%rip\)/;

/** Where a RIP-relative operand points: the next instruction's address plus the displacement. */
export function ripTarget(insn: Insn): bigint | undefined {
  const m = RIP_REL.exec(insn.operands);
  if (!m) return undefined;
  const disp = BigInt.asIntN(64, parseSignedHex(m[1]!));
  return BigInt.asUintN(64, insn.address + BigInt(insn.bytes.length) + disp);
}

/**
 * One line per instruction, objdump-like:
 * `ffffffff81000050 <ftrace_caller_op_ptr+0x0>:  48 8b 15 ..  movq 0x1ffffa9(%rip), %rdx  # 0xffffffff83000000 <function_trace_op+0x0>`
 */
export function formatInsn(insn: Insn, symbolize?: Symbolize): string {
  const where = symbolize?.(insn.address);
  const bytes = Array.from(insn.bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `${insn.address.toString(16)}${where ? ` <${where}>` : ''}:  ${bytes.padEnd(24)} ${formatInsnText(insn, symbolize)}`;
}

/** The instruction alone: `callq 0xffffffffa0000000 <ftrace_trampoline[tracer]+0x0>`. */
export function formatInsnText(insn: Insn, symbolize?: Symbolize): string {
  let ops = insn.operands;
  if (insn.target !== undefined) {
    const name = symbolize?.(insn.target);
    ops = `0x${insn.target.toString(16)}${name ? ` <${name}>` : ''}`;
  }
  const rip = ripTarget(insn);
  if (rip !== undefined) {
    const name = symbolize?.(rip);
    ops += `  # 0x${rip.toString(16)}${name ? ` <${name}>` : ''}`;
  }
  return `${insn.mnemonic}${ops ? ' ' + ops : ''}`;
}
