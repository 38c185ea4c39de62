// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One function explained on two kernels, lined up: the call site's three
 * stages side by side, and the two trampolines instruction by instruction,
 * paired where they do the same thing (a longest common subsequence over
 * the instructions with their addresses and displacements left out), so
 * what one era added, dropped or encoded differently stands out.
 */
import type { Explanation, TrampolineLine } from './explain.js';

/** same: identical bytes; moved: the same instruction with other bytes (a displacement, a target); only-a / only-b: one side has it. */
export type LineMatch = 'same' | 'moved' | 'only-a' | 'only-b';

export interface AlignedLine {
  match: LineMatch;
  a: TrampolineLine | null;
  b: TrampolineLine | null;
}

export interface ExplanationDiff {
  function: string;
  site: { stage: string; a: { bytes: string; instruction: string }; b: { bytes: string; instruction: string }; same: boolean }[];
  target: { a: string; b: string };
  trampoline: { a: Omit<NonNullable<Explanation['trampoline']>, 'lines'> | null; b: Omit<NonNullable<Explanation['trampoline']>, 'lines'> | null; lines: AlignedLine[] };
  path: { a: string[]; b: string[] };
}

/** What an instruction does, without where: numbers and symbol annotations dropped. */
function shape(l: TrampolineLine): string {
  return l.instruction.replace(/\s+#.*$/, '').replace(/<[^>]*>/g, '').replace(/-?0x[0-9a-f]+/g, 'N').trim();
}

export function alignLines(a: readonly TrampolineLine[], b: readonly TrampolineLine[]): AlignedLine[] {
  const sa = a.map(shape);
  const sb = b.map(shape);
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = sa[i] === sb[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const out: AlignedLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && sa[i] === sb[j]) {
      out.push({ match: a[i]!.bytes === b[j]!.bytes ? 'same' : 'moved', a: a[i]!, b: b[j]! });
      i++;
      j++;
    } else if (j >= b.length || (i < a.length && lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push({ match: 'only-a', a: a[i++]!, b: null });
    else out.push({ match: 'only-b', a: null, b: b[j++]! });
  }
  return out;
}

export function diffExplanations(a: Explanation, b: Explanation): ExplanationDiff {
  const meta = (t: Explanation['trampoline']) => (t ? { ops: t.ops, address: t.address, size: t.size, copiedFrom: t.copiedFrom } : null);
  return {
    function: a.function,
    site: a.stages.map((s, k) => {
      const o = b.stages[k]!;
      return { stage: s.stage, a: { bytes: s.bytes, instruction: s.instruction }, b: { bytes: o.bytes, instruction: o.instruction }, same: s.bytes === o.bytes };
    }),
    target: { a: a.target, b: b.target },
    trampoline: { a: meta(a.trampoline), b: meta(b.trampoline), lines: alignLines(a.trampoline?.lines ?? [], b.trampoline?.lines ?? []) },
    path: { a: a.path, b: b.path },
  };
}
