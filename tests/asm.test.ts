// SPDX-License-Identifier: GPL-2.0-or-later
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsmError, assembleProgram } from '../asm/assembler.js';
import { disassemble, formatInsn, initDisassembler } from '../asm/disasm.js';
import { RelReachError, decodeBranch, inRel32Reach } from '../asm/encoding.js';
import { FTRACE_NOP5, ftraceCallReplace, ftraceJmpReplace, isNop5 } from '../kernel-model/arch/x86/insn.js';

const BASE = 0xffffffff81000000n;

beforeAll(async () => {
  await initDisassembler();
});

describe('encodings that patching depends on', () => {
  test('call and jmp rel32 round-trip through decodeBranch', () => {
    const ip = 0xffffffff81000580n;
    const target = 0xffffffffa0000000n;
    const call = ftraceCallReplace(ip, target);
    expect(call[0]).toBe(0xe8);
    expect(call.length).toBe(5);
    expect(decodeBranch(ip, call)).toEqual({ kind: 'call', target });
    expect(decodeBranch(ip, ftraceJmpReplace(ip, BASE))).toEqual({ kind: 'jmp', target: BASE });
  });

  test('the 5-byte NOP is 0f 1f 44 00 00 and Capstone reads it as one nopl', () => {
    expect(Array.from(FTRACE_NOP5)).toEqual([0x0f, 0x1f, 0x44, 0x00, 0x00]);
    expect(isNop5(FTRACE_NOP5)).toBe(true);
    const [insn] = disassemble(FTRACE_NOP5, BASE, 1);
    expect(insn!.mnemonic).toBe('nopl');
    expect(insn!.bytes.length).toBe(5);
  });

  test('rel32 reach: module space reaches kernel text, the direct map does not', () => {
    expect(inRel32Reach(0xffffffffa0000000n, BASE)).toBe(true);
    expect(inRel32Reach(0xffff888000000000n, BASE)).toBe(false);
    expect(() => ftraceCallReplace(0xffff888000000000n, BASE)).toThrow(RelReachError);
  });
});

describe('assembleProgram', () => {
  test('lays out units, resolves labels across them in both directions, records FENTRY sites', async () => {
    const p = await assembleProgram(
      [
        { name: 'a.S', text: '__fentry__:\n\tretq\nfoo:\n\tFENTRY\n\tcall bar\n\tmovq var(%rip), %rdx\n\tretq\n' },
        { name: 'b.S', text: 'bar:\n\tFENTRY\n1:\tdecq %rdi\n\tjnz 1b\n\tjmp 2f\n2:\tcall foo\n\tretq\n' },
      ],
      { base: BASE, externals: new Map([['var', 0xffffffff83000000n]]) },
    );
    const foo = p.symbols.get('foo')!;
    const bar = p.symbols.get('bar')!;
    expect(bar.address % 16n).toBe(0n);
    expect(p.mcountLoc).toEqual([foo.address, bar.address]);
    const sym = (a: bigint) => p.symbols.format(a);
    const lines = disassemble(p.bytes.subarray(Number(foo.address - BASE)), foo.address, 3).map((i) => formatInsn(i, sym));
    expect(lines[0]).toMatch(/call.*<__fentry__\+0x0>/);
    expect(lines[1]).toMatch(/call.*<bar\+0x0>/); // a forward reference to a later unit
    expect(lines[2]).toMatch(/movq .*\(%rip\), %rdx  # 0xffffffff83000000/);
    expect(Array.from(p.bytes.subarray(Number(foo.address - BASE) + 10, Number(foo.address - BASE) + 13))).toEqual([0x48, 0x8b, 0x15]);
  });

  test('errors name the unit and the line', async () => {
    await expect(assembleProgram([{ name: 'bad.S', text: 'f:\n\tmovq %rax, %rbx\n\tfrobnicate %rax\n' }], { base: BASE })).rejects.toThrow(
      expect.objectContaining({ name: 'AsmError', unit: 'bad.S', line: 3 }),
    );
    await expect(assembleProgram([{ name: 'u.S', text: 'f:\n\tcall nowhere\n' }], { base: BASE })).rejects.toThrow(/u\.S:2: undefined symbol nowhere/);
    await expect(
      assembleProgram([{ name: 'x.S', text: 'f:\n\tretq\n' }, { name: 'y.S', text: 'f:\n\tretq\n' }], { base: BASE }),
    ).rejects.toBeInstanceOf(AsmError);
  });

  test('a cached program is identical to a freshly assembled one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asm-cache-'));
    try {
      const units = [{ name: 'c.S', text: 'g:\n\tFENTRY\n\tmovl $100000, %eax\n\tretq\n__fentry__:\n\tretq\n' }];
      const a = await assembleProgram(units, { base: BASE, cacheDir: dir });
      const b = await assembleProgram(units, { base: BASE, cacheDir: dir });
      expect(a.fromCache).toBe(false);
      expect(b.fromCache).toBe(true);
      expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
      expect(b.mcountLoc).toEqual(a.mcountLoc);
      expect(b.symbols.all()).toEqual(a.symbols.all());
      // Decimals stay decimal (no setOption radix bug): mov $100000 is a0 86 01 00.
      expect(Buffer.from(a.bytes).includes(Buffer.from([0xb8, 0xa0, 0x86, 0x01, 0x00]))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
