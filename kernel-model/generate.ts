// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Generated kernel functions, to make a kernel of any size.
 *
 * gen_func_<i>(x) starts with FENTRY and calls gen_func_<i/2> (and, when
 * i % 4 == 3, gen_func_<i/4>): a call graph of depth log2(N) in which every
 * call goes to a lower index, so each chunk only names labels of earlier
 * chunks and assembles in one pass. genFuncReference() computes the same
 * function in TypeScript, to check results computed by the guest.
 */
import type { SourceUnit } from '../asm/assembler.js';

export const GEN_PREFIX = 'gen_func_';
const CHUNK = 2000;

function children(i: number): [number | undefined, number | undefined] {
  return [i > 0 ? i >> 1 : undefined, i % 4 === 3 ? i >> 2 : undefined];
}

function genFunc(i: number): string {
  const [c1, c2] = children(i);
  const lines = [`${GEN_PREFIX}${i}:`, '\tFENTRY', '\tpushq\t%rbx', `\tleaq\t${i}(%rdi), %rbx`];
  if (c1 !== undefined) lines.push('\tmovq\t%rbx, %rdi', `\tcall\t${GEN_PREFIX}${c1}`, '\taddq\t%rax, %rbx');
  if (c2 !== undefined) lines.push('\tmovq\t%rbx, %rdi', `\tcall\t${GEN_PREFIX}${c2}`, '\txorq\t%rax, %rbx');
  lines.push('\tmovq\t%rbx, %rax', '\tpopq\t%rbx', '\tretq');
  return lines.join('\n');
}

/** Source units holding gen_func_0 .. gen_func_<count-1>, in chunks Keystone can take. */
export function generateFunctions(count: number): SourceUnit[] {
  const units: SourceUnit[] = [];
  for (let start = 0; start < count; start += CHUNK) {
    const end = Math.min(count, start + CHUNK);
    const body: string[] = [];
    for (let i = start; i < end; i++) body.push(genFunc(i));
    units.push({ name: `generated/gen_func_${start}-${end - 1}.S`, text: body.join('\n') + '\n' });
  }
  // The call-graph workload: notrace, like the syscall workload in runtime.S.
  if (count > 0) {
    units.push({
      name: 'generated/sim_workload_callgraph.S',
      text: [
        '# u64 sim_workload_callgraph(iterations, x): sum of gen_func_<N-1>(x + k) over k.',
        'sim_workload_callgraph:',
        '\tpushq\t%rbx',
        '\tpushq\t%r12',
        '\tpushq\t%r13',
        '\tmovq\t%rdi, %rbx',
        '\tmovq\t%rsi, %r12',
        '\txorl\t%r13d, %r13d',
        '1:\ttestq\t%rbx, %rbx',
        '\tjz\t2f',
        '\tmovq\t%r12, %rdi',
        `\tcall\t${GEN_PREFIX}${count - 1}`,
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
    });
  }
  return units;
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
