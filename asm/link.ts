// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The linker's part for template units: each instance is its template's
 * bytes at the next address, with its rel32 fields and value fields filled
 * in; labels and `__mcount_loc` entries come from the template's offsets.
 * Arithmetic is done on offsets from the program base, as JS numbers (every
 * address involved is within rel32 reach of the text, checked as we go).
 * checkLinked() then reads every patched field back and compares it with the
 * symbol table.
 */
import { AsmError, alignUp } from './unit.js';
import type { SymbolBlock, SymbolTable } from './symbols.js';
import type { CompiledTemplate, TemplateUnit } from './template.js';

export interface LinkedUnit {
  name: string;
  base: bigint;
  size: number;
}

/** Every instance of every unit, in layout order. */
export interface Layout {
  units: LinkedUnit[];
  end: bigint;
  /** Per instance: its offset from the program base, and its compiled template. */
  starts: Float64Array;
  templates: CompiledTemplate[];
  /** Every template label, in address order, based at the program base. */
  block: SymbolBlock & { names: string[]; starts: number[]; sizes: number[]; index: Map<string, number> };
  mcountLoc: bigint[];
}

/** The rel32 fields written: where, the addend, and the symbol each must reach. */
export interface PatchedRefs {
  at: Float64Array;
  addend: Int8Array;
  target: string[];
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const where = (u: TemplateUnit, k: number) => `${u.name}: ${u.templates[u.templateOf(k)]?.labels.length ? u.label(k, 0) : `instance ${k}`}`;

/**
 * Places the units' instances from `start` (units aligned to `align`), giving
 * each label a symbol whose size runs to the next label of its instance or to
 * the instance's end, as the labels of a source unit get. A label defined
 * twice shows up in the symbol table's size (see assembleProgram).
 */
export function layoutTemplateUnits(
  units: readonly TemplateUnit[],
  compiled: readonly (readonly CompiledTemplate[])[],
  programBase: bigint,
  start: bigint,
  align: number,
): Layout {
  const total = units.reduce((n, u) => n + u.count, 0);
  const block: Layout['block'] = { base: programBase, names: [], starts: [], sizes: [], index: new Map() };
  const out: Layout = { units: [], end: start, starts: new Float64Array(total), templates: [], block, mcountLoc: [] };
  const mcount: number[] = [];
  let off = Number(start - programBase);
  let n = 0;
  for (let ui = 0; ui < units.length; ui++) {
    const u = units[ui]!;
    off = Number(alignUp(programBase + BigInt(off), align) - programBase);
    const unitStart = off;
    const plans = compiled[ui]!.map(plan);
    off = placeUnit(u, plans, out, block, mcount, off, n);
    n += u.count;
    out.units.push({ name: u.name, base: programBase + BigInt(unitStart), size: off - unitStart });
  }
  // A loop of its own: the bigints the rest of the kernel wants, made in one go.
  out.mcountLoc = mcount.map((o) => programBase + BigInt(o));
  out.end = programBase + BigInt(off);
  return out;
}

/** What placing an instance of a template takes, worked out once per template. */
interface Plan {
  c: CompiledTemplate;
  /** One label: its offset and its symbol's size; else -1 and placeLabels does the work. */
  label0: number;
  size0: number;
  /** Label holes in address order, and each one's symbol size. */
  order: number[];
  sizes: number[];
}

function plan(c: CompiledTemplate): Plan {
  // A label's size: to the next label at a higher offset, or the end.
  const sizes = c.labelOffsets.map((o) => Math.min(c.bytes.length, ...c.labelOffsets.filter((p) => p > o)) - o);
  const order = c.labelOffsets.map((_, j) => j).sort((x, y) => c.labelOffsets[x]! - c.labelOffsets[y]!);
  const single = c.labelOffsets.length === 1;
  return { c, label0: single ? c.labelOffsets[0]! : -1, size0: single ? sizes[0]! : 0, order, sizes };
}

/**
 * The per-function loop, kept small: at 200,000 functions it runs before the
 * JIT has optimised it, and a small loop is optimised sooner.
 */
/** Places instance 0.. of `u` from `off` as instance n.. of the layout; returns where the unit ends. */
function placeUnit(u: TemplateUnit, plans: readonly Plan[], out: Layout, block: Layout['block'], mcount: number[], off: number, n: number): number {
  for (let k = 0; k < u.count; k++, n++) {
    const ti = u.templateOf(k);
    const p = plans[ti];
    if (p === undefined) throw new AsmError(where(u, k), undefined, `template ${ti} is not one of the unit's`);
    const c = p.c;
    out.starts[n] = off;
    out.templates.push(c);
    if (p.label0 >= 0) {
      const name = u.label(k, 0);
      block.index.set(name, block.names.length);
      block.names.push(name);
      block.starts.push(off + p.label0);
      block.sizes.push(p.size0);
    } else placeLabels(u, k, p, block, off);
    for (let m = 0; m < c.mcountOffsets.length; m++) mcount.push(off + c.mcountOffsets[m]!);
    off += c.bytes.length;
  }
  return off;
}

/** Labels of a template with several: in address order, and by name at one address, as the symbol table orders them. */
function placeLabels(u: TemplateUnit, k: number, p: Plan, block: Layout['block'], off: number): void {
  const first = block.names.length;
  for (const j of p.order) {
    const name = u.label(k, j);
    const lo = off + p.c.labelOffsets[j]!;
    let at = block.names.length;
    while (at > first && block.starts[at - 1] === lo && block.names[at - 1]! > name) at--;
    block.names.splice(at, 0, name);
    block.starts.splice(at, 0, lo);
    block.sizes.splice(at, 0, p.sizes[j]!);
  }
  for (let i = first; i < block.names.length; i++) block.index.set(block.names[i]!, i);
}

/**
 * Writes the instances into `bytes` (the program's, from its base) and
 * returns every rel32 field written. `outside(name)` gives a symbol that is
 * not a template label, as an offset from the program base.
 */
export function writeTemplateUnits(units: readonly TemplateUnit[], layout: Layout, bytes: Uint8Array, outside: (name: string) => number | undefined): PatchedRefs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nrefs = layout.templates.reduce((s, c) => s + c.relocs.length, 0);
  const refs: PatchedRefs = { at: new Float64Array(nrefs), addend: new Int8Array(nrefs), target: new Array<string>(nrefs) };
  const outsideCache = new Map<string, number | undefined>();
  let r = 0;
  let n = 0;
  for (const u of units) {
    for (let k = 0; k < u.count; k++, n++) {
      const c = layout.templates[n]!;
      const off = layout.starts[n]!;
      bytes.set(c.bytes, off);
      for (let i = 0; i < c.relocs.length; i++) {
        const rel = c.relocs[i]!;
        const target = rel.hole >= 0 ? u.symbol(k, rel.hole) : rel.name;
        const bi = layout.block.index.get(target);
        let to = bi === undefined ? undefined : layout.block.starts[bi];
        if (to === undefined) {
          if (!outsideCache.has(target)) outsideCache.set(target, outside(target));
          to = outsideCache.get(target);
          if (to === undefined) throw new AsmError(where(u, k), undefined, `undefined symbol ${target}`);
        }
        const at = off + rel.offset;
        const v = to + rel.addend - at;
        if (v < INT32_MIN || v > INT32_MAX) throw new AsmError(where(u, k), undefined, `${target} is beyond rel32 reach`);
        // An assembler would use a short jump for a near target: refuse rather than differ.
        if (rel.relaxable && v >= -136 && v <= 136) throw new AsmError(where(u, k), undefined, `the jump to ${target} would be a short jump: a template must not jump to a near hole`);
        view.setInt32(at, v, true);
        refs.at[r] = at;
        refs.addend[r] = rel.addend;
        refs.target[r++] = target;
      }
      for (let i = 0; i < c.values.length; i++) {
        const f = c.values[i]!;
        const x = u.value(k, i);
        if (!Number.isSafeInteger(x) || x < f.min || x > f.max) {
          throw new AsmError(where(u, k), undefined, `value ${x} is outside ${f.min}..${f.max}, the range template ${c.name} was assembled for`);
        }
        const at = off + f.offset;
        if (f.width === 1) view.setInt8(at, x);
        else if (f.width === 2) view.setInt16(at, x, true);
        else if (f.width === 4) view.setInt32(at, x, true);
        else if (f.width === 8) view.setBigInt64(at, BigInt(x), true);
      }
    }
  }
  return refs;
}

/**
 * Reads back every rel32 field written and every `call __fentry__` (or mcount) site and
 * compares them with the final symbol table: a wrong offset, an overlap or a
 * stale symbol shows up here rather than as a wild call in the guest.
 */
export function checkLinked(
  bytes: Uint8Array,
  programBase: bigint,
  refs: PatchedRefs,
  mcountLoc: readonly bigint[],
  symbols: SymbolTable,
  externals: ReadonlyMap<string, bigint>,
  hook = '__fentry__',
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsetOf = (name: string): number | undefined => {
    const o = symbols.offsetOf(name, programBase);
    if (o !== undefined) return o;
    const a = externals.get(name);
    return a === undefined ? undefined : Number(BigInt.asIntN(64, a - programBase));
  };
  for (let r = 0; r < refs.at.length; r++) {
    const at = refs.at[r]!;
    const reached = at + view.getInt32(at, true) - refs.addend[r]!;
    if (offsetOf(refs.target[r]!) !== reached) {
      throw new AsmError('link check', undefined, `the rel32 at 0x${(programBase + BigInt(at)).toString(16)} does not reach ${refs.target[r]}`);
    }
  }
  const fentry = offsetOf(hook);
  for (const a of mcountLoc) {
    const at = Number(a - programBase);
    if (bytes[at] !== 0xe8 || at + 5 + view.getInt32(at + 1, true) !== fentry) {
      throw new AsmError('link check', undefined, `__mcount_loc entry 0x${a.toString(16)} is not a call to ${hook}`);
    }
  }
}
