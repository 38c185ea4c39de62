// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One source unit through Keystone: comments and numeric labels handled,
 * FENTRY expanded, outside symbols defined, label addresses read back, and a
 * failing line found for the error message.
 */
import { hex } from '../emu/hex.js';
import { KS_ERR_ASM_SYMBOL_MISSING, KeystoneError, ksAssemble } from './keystone.js';

export interface SourceUnit {
  /** Shown in errors: a file name or a generated chunk's name. */
  name: string;
  text: string;
}

export class AsmError extends Error {
  constructor(
    readonly unit: string,
    readonly line: number | undefined,
    readonly reason: string,
    readonly sourceLine?: string,
  ) {
    super(`${unit}${line !== undefined ? `:${line}` : ''}: ${reason}${sourceLine ? `\n    ${sourceLine.trim()}` : ''}`);
    this.name = 'AsmError';
  }
}

export const MCOUNT_PREFIX = '__mcount_loc_';

/**
 * What the compiler puts where a source says FENTRY, the start of a function
 * the kernel may trace: with -pg -mfentry, `call __fentry__` before anything
 * else; with -pg alone, the frame first (`push %rbp; mov %rsp,%rbp`), then
 * `call mcount`, and the frame torn down (`leave`) before each return.
 */
export type ProfileCall = 'fentry' | 'mcount';
export const PROFILE_HOOK: Readonly<Record<ProfileCall, string>> = { fentry: '__fentry__', mcount: 'mcount' };
export const LABEL_RE = /^\s*([A-Za-z_]\w*)\s*:/;
export const IDENT_RE = /(?<![%\w.])[A-Za-z_]\w*/g;

export interface PreparedUnit {
  name: string;
  /** Source after FENTRY expansion (see ProfileCall) and comment removal, line numbers kept. */
  lines: string[];
  labels: string[];
  idents: Set<string>;
}

export function stripComment(line: string): string {
  // AT&T `#` comments; no string in our sources holds a '#'.
  const i = line.indexOf('#');
  return i < 0 ? line : line.slice(0, i);
}

const NUM_LABEL_DEF = /^(\s*)(\d+):/;
const NUM_LABEL_REF = /(?<![\w$.])(\d+)([fb])\b/g;

/**
 * GNU as numeric local labels (`1:` with `1f`/`1b`), which Keystone lacks:
 * each definition becomes a unique `.L` label and each reference names the
 * next (f) or latest (b) definition.
 */
export function expandNumericLabels(lines: string[], unitIndex: number): string[] {
  const defs = new Map<string, number[]>();
  lines.forEach((l, i) => {
    const m = NUM_LABEL_DEF.exec(l);
    if (m) defs.set(m[2]!, [...(defs.get(m[2]!) ?? []), i]);
  });
  if (defs.size === 0) return lines;
  const name = (n: string, i: number) => `.Lnum_${unitIndex}_${n}_${i}`;
  return lines.map((l, i) => {
    let out = l.replace(NUM_LABEL_DEF, (_, ws: string, n: string) => `${ws}${name(n, i)}:`);
    const head = out.length - l.length + (NUM_LABEL_DEF.exec(l)?.[0].length ?? 0);
    const body = out.slice(head).replace(NUM_LABEL_REF, (whole, n: string, dir: string) => {
      const at = defs.get(n) ?? [];
      const target = dir === 'f' ? at.find((d) => d > i) : [...at].reverse().find((d) => d <= i);
      return target === undefined ? whole : name(n, target);
    });
    out = out.slice(0, head) + body;
    return out;
  });
}

export function prepare(unit: SourceUnit, unitIndex: number, profile: ProfileCall = 'fentry'): PreparedUnit {
  const labels: string[] = [];
  let fentry = 0;
  // With mcount, inside a traced function (from its FENTRY to the next
  // function's label) every return first tears the frame down.
  let framed = false;
  const raw = unit.text.split('\n').map((r) => {
    const line = stripComment(r);
    if (line.trim() === 'FENTRY') {
      const site = `${MCOUNT_PREFIX}${unitIndex}_${fentry++}: call ${PROFILE_HOOK[profile]}`;
      framed = profile === 'mcount';
      return profile === 'mcount' ? `\tpushq %rbp; movq %rsp, %rbp; ${site}` : site;
    }
    const label = LABEL_RE.exec(line);
    if (label && !label[1]!.startsWith('.L')) framed = false;
    // A return may carry a label (`1: retq`): keep it on the leave.
    return framed ? line.replace(/^(\s*(?:\w+:\s*)?)retq?\s*$/, '$1leave; retq') : line;
  });
  const lines = expandNumericLabels(raw, unitIndex);
  // A line may hold several statements (the mcount prologue): a label may start any of them.
  for (const line of lines) {
    for (const stmt of line.split(';')) {
      const m = LABEL_RE.exec(stmt);
      if (m) labels.push(m[1]!);
    }
  }
  const idents = new Set<string>();
  for (const line of lines) for (const m of line.matchAll(IDENT_RE)) idents.add(m[0]);
  for (const l of labels) idents.delete(l);
  return { name: unit.name, lines, labels, idents };
}

const ADDRESS_MARK = ' #addr';
/** `name = value`, marked as an address when it is one (see assembleUnit). */
export function def(name: string, v: bigint): string {
  return `${name} = ${hex(v)}` + (v >= 1n << 32n ? ADDRESS_MARK : '');
}

export function alignUp(v: bigint, a: number): bigint {
  const A = BigInt(a);
  return ((v + A - 1n) / A) * A;
}

/** Assembles one unit; returns its code bytes and the addresses of its labels. */
export function assembleUnit(u: PreparedUnit, base: bigint, defs: string[]): { code: Uint8Array; labelAddrs: bigint[] } {
  // Addresses are defined last: Keystone folds a symbol defined before its use
  // into a constant, and then encodes `sym(%rip)` with the absolute value as
  // the displacement. Small constants (offsets, flags) go first for the same
  // reason: folded, they get the short encodings GNU as would pick.
  const early = defs.filter((d) => !d.endsWith(ADDRESS_MARK));
  const late = defs.filter((d) => d.endsWith(ADDRESS_MARK)).map((d) => d.slice(0, -ADDRESS_MARK.length));
  const src = [...early, ...u.lines, ...u.labels.map((l) => `.quad ${l}`), ...late].join('\n');
  const out = ksAssemble(src, base);
  const tail = u.labels.length * 8;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const labelAddrs = u.labels.map((_, i) => view.getBigUint64(out.length - tail + i * 8, true));
  return { code: out.slice(0, out.length - tail), labelAddrs };
}

/** Finds the line that made Keystone fail, for an error a person can act on. */
export function diagnose(u: PreparedUnit, base: bigint, known: ReadonlyMap<string, bigint>, err: KeystoneError): AsmError {
  const defined = new Set([...known.keys(), ...u.labels]);
  const operands = (body: string) =>
    // The first identifier is the mnemonic (after any prefix such as `lock`).
    [...body.replace(/^(lock|rep|repz|repnz|repe|repne)\s+/, '').matchAll(IDENT_RE)].map((m) => m[0]).slice(1);
  if (err.code === KS_ERR_ASM_SYMBOL_MISSING) {
    for (let i = 0; i < u.lines.length; i++) {
      for (const stmt of u.lines[i]!.split(';')) {
        const body = stmt.replace(LABEL_RE, '').trim();
        if (body.startsWith('.') && !/^\.(byte|word|long|quad)\b/.test(body)) continue;
        const missing = operands(body).find((id) => !defined.has(id));
        if (missing) return new AsmError(u.name, i + 1, `undefined symbol ${missing}`, u.lines[i]);
      }
    }
    return new AsmError(u.name, undefined, err.message);
  }
  // Blank one line at a time (keeping its label): the line whose removal
  // lets the unit assemble is the one at fault.
  const defs = [...u.idents].map((id) => def(id, known.get(id) ?? base));
  for (let i = 0; i < u.lines.length; i++) {
    const line = u.lines[i]!;
    const label = LABEL_RE.exec(line);
    if (!line.replace(LABEL_RE, '').trim()) continue;
    const lines = [...u.lines];
    lines[i] = label ? `${label[1]}:` : '';
    try {
      assembleUnit({ ...u, lines }, base, defs);
      return new AsmError(u.name, i + 1, err.message, line);
    } catch {
      // not this line
    }
  }
  return new AsmError(u.name, undefined, err.message);
}
