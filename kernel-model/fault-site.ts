// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Where a data fault happened. Unicorn 2.0.1 stops a faulting access with
 * %rip still at the start of its translation block, not at the instruction
 * that made the access (2.1 replays the instruction and is exact). The other
 * registers are those the faulting instruction saw, so that instruction is the
 * first of the block whose memory operand, computed from them, covers the
 * faulting address: decoded here from the guest's own bytes.
 */
import { disassemble, isDisassemblerReady, type Insn } from '../asm/disasm.js';
import type { GuestMemory, RegisterDump, RegName } from '../emu/index.js';

/** How far into a block to look: QEMU's blocks are far shorter. */
const MAX_INSNS = 64;
const MEM_OPERAND = /(?:%([fg]s):)?(-?0x[0-9a-f]+|-?\d+)?\((%[a-z0-9]+)?(?:,\s*(%[a-z0-9]+)(?:,\s*(\d))?)?\)/g;

function reg(regs: RegisterDump, name: string | undefined, next: bigint): bigint {
  if (!name) return 0n;
  const r = name.slice(1);
  if (r === 'rip') return next;
  return regs[r as RegName] ?? 0n;
}

/**
 * The addresses an instruction's operands access, with the registers given:
 * for a write only its destination (AT&T's last operand) and the stack slot a
 * push or call writes; for a read every memory operand and the slot a pop or
 * ret reads.
 */
function accesses(insn: Insn, regs: RegisterDump, write: boolean): bigint[] {
  const next = insn.address + BigInt(insn.bytes.length);
  const out: bigint[] = [];
  const operands = write ? (insn.operands.split(/,\s*(?![^(]*\))/).at(-1) ?? '') : insn.operands;
  for (const m of operands.matchAll(MEM_OPERAND)) {
    const [, seg, disp, base, index, scale] = m;
    let ea = (disp ? BigInt(disp) : 0n) + reg(regs, base, next) + reg(regs, index, next) * BigInt(scale ?? '1');
    if (seg) ea += regs[`${seg}_base` as RegName] ?? 0n;
    out.push(BigInt.asUintN(64, ea));
  }
  // Implicit stack accesses.
  if (write && /^(push|call)/.test(insn.mnemonic)) out.push(BigInt.asUintN(64, regs.rsp - 8n));
  if (!write && /^(pop|ret|leave)/.test(insn.mnemonic)) out.push(regs.rsp);
  return out;
}

/**
 * The address of the instruction that made a faulting data access at
 * `address`, searching from `blockStart`; undefined when none matches (the
 * caller then keeps what the engine said).
 */
export function locateDataFault(memory: GuestMemory, blockStart: bigint, address: bigint, write: boolean, regs: RegisterDump): bigint | undefined {
  if (!isDisassemblerReady()) return undefined;
  let code: Uint8Array;
  try {
    code = memory.read(blockStart, MAX_INSNS * 4);
  } catch {
    return undefined;
  }
  for (const insn of disassemble(code, blockStart, MAX_INSNS)) {
    if (accesses(insn, regs, write).some((ea) => address >= ea && address - ea < 16n)) return insn.address;
    if (insn.target !== undefined || /^(ret|jmp|call|iret|sysret|ud2|hlt)/.test(insn.mnemonic)) break; // a block ends at a branch
  }
  return undefined;
}
