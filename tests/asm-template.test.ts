// SPDX-License-Identifier: GPL-2.0-or-later
import { AsmError, assembleProgram, type ProgramUnit, type SourceUnit } from '../asm/assembler.js';
import { initKeystone } from '../asm/keystone.js';
import { compileTemplate, renderUnit, templateUnit, type AsmTemplate, type TemplateUnit } from '../asm/template.js';
import { generateFunctions, generateFunctionsSource } from '../kernel-model/generate.js';

const BASE = 0xffffffff81000000n;
const DATA = 0xffffffff83000000n;
const CORE: SourceUnit = { name: 'core.S', text: '__fentry__:\n\tretq\nhelper:\n\tFENTRY\n\tretq\n' };

/** The same program twice: template units laid out, and their rendered source through Keystone. */
async function both(units: TemplateUnit[], externals = new Map<string, bigint>()) {
  const fast = await assembleProgram([CORE, ...units], { base: BASE, externals });
  const slow = await assembleProgram([CORE, ...units.map((u) => ({ name: u.name, text: renderUnit(u) }))], { base: BASE, externals });
  return { fast, slow };
}

function expectSame(fast: Awaited<ReturnType<typeof both>>['fast'], slow: Awaited<ReturnType<typeof both>>['slow']) {
  expect(fast.bytes.length).toBe(slow.bytes.length);
  const firstDiff = fast.bytes.findIndex((b, i) => b !== slow.bytes[i]);
  expect(firstDiff).toBe(-1);
  expect(fast.symbols.all()).toEqual(slow.symbols.all());
  expect(fast.mcountLoc).toEqual(slow.mcountLoc);
  expect(fast.units).toEqual(slow.units);
}

describe('template layout against Keystone', () => {
  test('generated functions: 300 laid out from templates are byte for byte what Keystone makes of their source', async () => {
    const { fast, slow } = await both(generateFunctions(300));
    expectSame(fast, slow);
    expect(fast.symbols.get('gen_func_299')).toBeDefined();
    expect(fast.mcountLoc.length).toBe(301); // helper + 300 generated
  });

  test('2,200 generated functions: across a unit boundary, with 4-byte index displacements', async () => {
    const units = generateFunctions(2200);
    const fast = await assembleProgram([CORE, ...units], { base: BASE });
    const src = generateFunctionsSource(2200);
    const slow = await assembleProgram([CORE, ...src], { base: BASE });
    expectSame(fast, slow);
    expect(fast.units.map((u) => u.name)).toEqual(['core.S', ...src.map((u) => u.name)]);
  });

  test('rel32 data references with and without a trailing immediate, outside symbols, a 4-byte value and several labels', async () => {
    const t: AsmTemplate = {
      name: 'probe',
      text: [
        '{{fn}}:',
        '\tFENTRY',
        '\tmovq\t{{data}}(%rip), %rdx',
        '\tcmpl\t$1, {{data}}(%rip)',
        '\tmovl\t${{v}}, %eax',
        '{{inner}}:',
        '\tcall\t{{callee}}',
        '\tcall\thelper',
        '\tmovq\tfunction_trace_op(%rip), %rax',
        '\tretq',
      ].join('\n'),
      labels: ['fn', 'inner'],
      symbols: ['data', 'callee'],
      values: [{ name: 'v', min: -(2 ** 31), max: 2 ** 31 - 1 }],
    };
    const values = [0, -1, 5, 123456789, -(2 ** 31), 2 ** 31 - 1];
    const unit = templateUnit(
      'probe.S',
      [t],
      values.map((v, k) => ({ template: 0, labels: [`p${k}`, `p${k}_inner`], symbols: [k % 2 ? 'var_a' : 'var_b', k > 0 ? `p${k - 1}` : 'helper'], values: [v] })),
    );
    const externals = new Map([
      ['var_a', DATA],
      ['var_b', DATA + 0x1238n],
      ['function_trace_op', DATA + 0x40n],
    ]);
    const { fast, slow } = await both([unit], externals);
    expectSame(fast, slow);
    await initKeystone();
    const c = compileTemplate(t, BASE);
    expect(c.relocs.map((r) => [r.name, r.addend])).toEqual([
      ['__fentry__', -4],
      ['data', -4],
      ['data', -5],
      ['callee', -4],
      ['helper', -4],
      ['function_trace_op', -4],
    ]);
    expect(c.values[0]!.width).toBe(4);
  });

  test('a template that is not relocatable, or an instance outside its template, is refused with a reason', async () => {
    await initKeystone();
    const tpl = (text: string, extra: Partial<AsmTemplate> = {}): AsmTemplate => ({ name: 'bad', text, labels: ['f'], symbols: [], values: [], ...extra });
    expect(() => compileTemplate(tpl('{{f}}:\n\t.p2align 4\n\tretq'), BASE)).toThrow(/size changes with its address/);
    expect(() => compileTemplate(tpl('{{f}}:\n\t.quad {{s}}', { symbols: ['s'] }), BASE)).toThrow(/not (rel32|a 32-bit field)/);
    expect(() => compileTemplate(tpl('{{f}}:\nfixed:\n\tretq'), BASE)).toThrow(/label fixed would be defined by every instance/);
    const unit = (value: number): ProgramUnit =>
      templateUnit('v.S', [tpl('{{f}}:\n\tleaq {{i}}(%rdi), %rax\n\tretq', { values: [{ name: 'i', min: 1, max: 127 }] })], [{ template: 0, labels: ['f'], symbols: [], values: [value] }]);
    await expect(assembleProgram([CORE, unit(128)], { base: BASE })).rejects.toThrow(/value 128 is outside 1\.\.127/);
    await expect(assembleProgram([CORE, unit(7)], { base: BASE })).resolves.toBeDefined();
    const missing = templateUnit('m.S', [tpl('{{f}}:\n\tcall {{s}}', { symbols: ['s'] })], [{ template: 0, labels: ['f'], symbols: ['nowhere'], values: [] }]);
    const twice = (labels: string[]) => templateUnit('d.S', [tpl('{{f}}:\n\tretq')], labels.map((l) => ({ template: 0, labels: [l], symbols: [], values: [] })));
    await expect(assembleProgram([CORE, twice(['f', 'g', 'f'])], { base: BASE })).rejects.toThrow(/d\.S.*label f is defined twice/);
    await expect(assembleProgram([CORE, twice(['helper'])], { base: BASE })).rejects.toThrow(/label helper is defined twice/);
    await expect(assembleProgram([CORE, twice(['var_a'])], { base: BASE, externals: new Map([['var_a', DATA]]) })).rejects.toThrow(/label var_a is also an outside symbol/);
    await expect(assembleProgram([CORE, missing], { base: BASE })).rejects.toThrow(AsmError);
    await expect(assembleProgram([CORE, missing], { base: BASE })).rejects.toThrow(/undefined symbol nowhere/);
  });
});
