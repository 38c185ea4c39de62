// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Generated kernel functions, to make a kernel of any size.
 *
 * gen_func_<i>(x) starts with FENTRY and calls gen_func_<i/2> (and, when
 * i % 4 == 3, gen_func_<i/4>): a call graph of depth log2(N) in which every
 * call goes to a lower index. genFuncReference() computes the same function
 * in TypeScript, to check results computed by the guest.
 *
 * The functions are instances of a handful of templates (asm/template.ts),
 * one per shape and per encoding of the index (`leaq i(%rdi)` takes no
 * displacement for 0, a byte up to 127, four bytes after), so Keystone
 * assembles each shape once and the linker lays out the rest.
 * generateFunctionsSource() gives the same functions as plain source.
 */
import type { SourceUnit } from '../asm/assembler.js';
import { renderUnit, templateUnit, type AsmTemplate, type TemplateUnit } from '../asm/template.js';

export const GEN_PREFIX = 'gen_func_';
/** Functions per unit: each unit starts 16-byte aligned, as the source chunks did. */
const CHUNK = 2000;

function children(i: number): [number | undefined, number | undefined] {
  return [i > 0 ? i >> 1 : undefined, i % 4 === 3 ? i >> 2 : undefined];
}

function genFuncSource(c1: boolean, c2: boolean, range: readonly [number, number]): AsmTemplate {
  const lines = ['{{name}}:', '\tFENTRY', '\tpushq\t%rbx', '\tleaq\t{{i}}(%rdi), %rbx'];
  if (c1) lines.push('\tmovq\t%rbx, %rdi', '\tcall\t{{c1}}', '\taddq\t%rax, %rbx');
  if (c2) lines.push('\tmovq\t%rbx, %rdi', '\tcall\t{{c2}}', '\txorq\t%rax, %rbx');
  lines.push('\tmovq\t%rbx, %rax', '\tpopq\t%rbx', '\tretq');
  return {
    name: `gen_func${c1 ? '_c1' : ''}${c2 ? '_c2' : ''}_i${range[0]}-${range[1]}`,
    text: lines.join('\n'),
    labels: ['name'],
    symbols: [...(c1 ? ['c1'] : []), ...(c2 ? ['c2'] : [])],
    values: [{ name: 'i', min: range[0], max: range[1] }],
  };
}

const I_RANGES = [
  [1, 127],
  [128, 2 ** 31 - 1],
] as const;
/** gen_func_0 (a leaf, no displacement), then c1 and c1+c2 shapes for each index range. */
const GEN_TEMPLATES: readonly AsmTemplate[] = [
  genFuncSource(false, false, [0, 0]),
  ...I_RANGES.flatMap((r) => [genFuncSource(true, false, r), genFuncSource(true, true, r)]),
];

/** Which of GEN_TEMPLATES gen_func_<i> is made from. */
function genFuncTemplate(i: number): number {
  if (i === 0) return 0;
  const first = i <= I_RANGES[0][1] ? 1 : 3;
  return i % 4 === 3 ? first + 1 : first;
}

// The call-graph workload: notrace, like the syscall workload in runtime.S.
const WORKLOAD_TEMPLATE: AsmTemplate = {
  name: 'sim_workload_callgraph',
  text: [
    '# u64 sim_workload_callgraph(iterations, x): sum of gen_func_<N-1>(x + k) over k.',
    '{{name}}:',
    '\tpushq\t%rbx',
    '\tpushq\t%r12',
    '\tpushq\t%r13',
    '\tmovq\t%rdi, %rbx',
    '\tmovq\t%rsi, %r12',
    '\txorl\t%r13d, %r13d',
    '1:\ttestq\t%rbx, %rbx',
    '\tjz\t2f',
    '\tmovq\t%r12, %rdi',
    '\tcall\t{{last}}',
    '\taddq\t%rax, %r13',
    '\tincq\t%r12',
    '\tdecq\t%rbx',
    '\tjmp\t1b',
    '2:\tmovq\t%r13, %rax',
    '\tpopq\t%r13',
    '\tpopq\t%r12',
    '\tpopq\t%rbx',
    '\tretq',
  ].join('\n'),
  labels: ['name'],
  symbols: ['last'],
  values: [],
};

/**
 * gen_func_<start> .. gen_func_<start+count-1>. A class, so that every unit
 * shares one set of accessors (the linker's loop then has one call target),
 * and the names are made once and shared by the labels and the calls.
 */
class GenFuncUnit implements TemplateUnit {
  readonly kind = 'template';
  readonly templates = GEN_TEMPLATES;
  readonly name: string;
  constructor(
    private readonly names: readonly string[],
    private readonly start: number,
    readonly count: number,
  ) {
    this.name = `generated/gen_func_${start}-${start + count - 1}.S`;
  }

  templateOf(k: number): number {
    return genFuncTemplate(this.start + k);
  }

  label(k: number): string {
    return this.names[this.start + k]!;
  }

  /** Hole 0 is gen_func_<i/2>, hole 1 gen_func_<i/4> (see children()). */
  symbol(k: number, j: number): string {
    return this.names[(this.start + k) >> (j + 1)]!;
  }

  value(k: number): number {
    return this.start + k;
  }
}

/** Template units holding gen_func_0 .. gen_func_<count-1> and the call-graph workload. */
export function generateFunctions(count: number): TemplateUnit[] {
  const names = Array.from({ length: count }, (_, i) => GEN_PREFIX + i);
  const units: TemplateUnit[] = [];
  for (let start = 0; start < count; start += CHUNK) units.push(new GenFuncUnit(names, start, Math.min(count, start + CHUNK) - start));
  if (count > 0) {
    units.push(
      templateUnit('generated/sim_workload_callgraph.S', [WORKLOAD_TEMPLATE], [{ template: 0, labels: ['sim_workload_callgraph'], symbols: [names[count - 1]!], values: [] }]),
    );
  }
  return units;
}

/** The same units as plain source, for Keystone to assemble whole (the reference the layout is checked against). */
export function generateFunctionsSource(count: number): SourceUnit[] {
  return generateFunctions(count).map((u) => ({ name: u.name, text: renderUnit(u) }));
}

const M64 = (1n << 64n) - 1n;

/** gen_func_<i>(x) computed on the host, for checking the guest. */
export function genFuncReference(i: number, x: bigint): bigint {
  let b = (x + BigInt(i)) & M64;
  const [c1, c2] = children(i);
  if (c1 !== undefined) b = (b + genFuncReference(c1, b)) & M64;
  if (c2 !== undefined) b = b ^ genFuncReference(c2, b);
  return b;
}
