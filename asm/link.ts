// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The linker's part for template units: each instance is its template's
 * bytes at the next address, with its rel32 fields and value fields filled
 * in; labels and `__mcount_loc` entries come from the template's offsets.
 * Arithmetic is done on offsets from the program base, as JS numbers (every
 * address involved is within rel32 reach of the text, checked as we go), and
 * per-instance data is kept in flat arrays: at 200,000 functions, objects per
 * function cost more in garbage collection than the work itself.
 * checkLinked() then reads every patched field back and compares it with the
 * symbol table.
 */
import { AsmError, alignUp } from './unit.js';
import type { KSymbol } from './symbols.js';
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
  /** Per instance: its unit's index, for messages. */
  unitOf: Uint32Array;
  /** Per instance: the index of its first symbol-hole name in `symbolNames`, and of its first value in `values`. */
  symbolBase: Uint32Array;
  valueBase: Uint32Array;
  symbolNames: string[];
  values: number[];
  /** Per instance, its first label (for messages). */
  firstLabel: string[];
  symbols: KSymbol[];
  mcountLoc: bigint[];
  /** Label name -> offset from the program base, for every template label. */
  labelOffsets: Map<string, number>;
}

/** The rel32 fields written: where, the addend, and the symbol each must reach. */
export interface PatchedRefs {
  at: Float64Array;
  addend: Int8Array;
  target: string[];
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Places the units' instances from `start` (units aligned to `align`), giving
 * each label a symbol whose size runs to the next label of its instance or to
 * the instance's end, as the labels of a source unit get.
 */
export function layoutTemplateUnits(
  units: readonly TemplateUnit[],
  compiled: readonly (readonly CompiledTemplate[])[],
  programBase: bigint,
  start: bigint,
  align: number,
  taken: (name: string) => boolean,
): Layout {
  const total = units.reduce((n, u) => n + u.count, 0);
  const out: Layout = {
    units: [],
    end: start,
    starts: new Float64Array(total),
    templates: new Array<CompiledTemplate>(total),
    unitOf: new Uint32Array(total),
    symbolBase: new Uint32Array(total + 1),
    valueBase: new Uint32Array(total + 1),
    symbolNames: [],
    values: [],
    firstLabel: new Array<string>(total),
    symbols: [],
    mcountLoc: [],
    labelOffsets: new Map(),
  };
  let off = Number(start - programBase);
  let n = 0;
  units.forEach((u, ui) => {
    off = Number(alignUp(programBase + BigInt(off), align) - programBase);
    const unitStart = off;
    const ct = compiled[ui]!;
    // Label sizes within a template: to the next label at a higher offset, or the end.
    const sizes = ct.map((c) => c.labelOffsets.map((o) => Math.min(c.bytes.length, ...c.labelOffsets.filter((p) => p > o)) - o));
    for (let k = 0; k < u.count; k++, n++) {
      const inst = u.instance(k);
      const c = ct[inst.template];
      if (!c) throw new AsmError(u.name, undefined, `instance ${k} names template ${inst.template}, which the unit does not have`);
      if (inst.labels.length !== c.labelOffsets.length || inst.values.length !== c.values.length) {
        throw new AsmError(u.name, undefined, `instance ${k} does not fill the holes of template ${c.name}`);
      }
      out.starts[n] = off;
      out.templates[n] = c;
      out.unitOf[n] = ui;
      out.firstLabel[n] = inst.labels[0] ?? `instance ${k}`;
      const ls = sizes[inst.template]!;
      for (let j = 0; j < inst.labels.length; j++) {
        const name = inst.labels[j]!;
        if (out.labelOffsets.has(name) || taken(name)) throw new AsmError(u.name, undefined, `label ${name} is defined twice`);
        const lo = off + c.labelOffsets[j]!;
        out.labelOffsets.set(name, lo);
        out.symbols.push({ name, address: programBase + BigInt(lo), size: ls[j]! });
      }
      for (const m of c.mcountOffsets) out.mcountLoc.push(programBase + BigInt(off + m));
      for (const s of inst.symbols) out.symbolNames.push(s);
      for (const v of inst.values) out.values.push(v);
      out.symbolBase[n + 1] = out.symbolNames.length;
      out.valueBase[n + 1] = out.values.length;
      off += c.bytes.length;
    }
    out.units.push({ name: u.name, base: programBase + BigInt(unitStart), size: off - unitStart });
  });
  out.end = programBase + BigInt(off);
  return out;
}

/**
 * Writes the instances into `bytes` (the program's, from its base) and
 * returns every rel32 field written. `outside(name)` gives a symbol that is
 * not a template label, as an offset from the program base.
 */
export function writeTemplateUnits(layout: Layout, unitNames: readonly string[], bytes: Uint8Array, outside: (name: string) => number | undefined): PatchedRefs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = layout.starts.length;
  const nrefs = layout.templates.reduce((s, c) => s + c.relocs.length, 0);
  const refs: PatchedRefs = { at: new Float64Array(nrefs), addend: new Int8Array(nrefs), target: new Array<string>(nrefs) };
  const where = (n: number) => `${unitNames[layout.unitOf[n]!]}: ${layout.firstLabel[n]}`;
  const outsideCache = new Map<string, number | undefined>();
  let r = 0;
  for (let n = 0; n < count; n++) {
    const c = layout.templates[n]!;
    const off = layout.starts[n]!;
    bytes.set(c.bytes, off);
    const sb = layout.symbolBase[n]!;
    for (const rel of c.relocs) {
      const target = rel.hole >= 0 ? layout.symbolNames[sb + rel.hole]! : rel.name;
      let to = layout.labelOffsets.get(target);
      if (to === undefined) {
        if (!outsideCache.has(target)) outsideCache.set(target, outside(target));
        to = outsideCache.get(target);
        if (to === undefined) throw new AsmError(where(n), undefined, `undefined symbol ${target}`);
      }
      const at = off + rel.offset;
      const v = to + rel.addend - at;
      if (v < INT32_MIN || v > INT32_MAX) throw new AsmError(where(n), undefined, `${target} is beyond rel32 reach`);
      // An assembler would use a short jump for a near target: refuse rather than differ.
      if (rel.relaxable && v >= -136 && v <= 136) throw new AsmError(where(n), undefined, `the jump to ${target} would be a short jump: a template must not jump to a near hole`);
      view.setInt32(at, v, true);
      refs.at[r] = at;
      refs.addend[r] = rel.addend;
      refs.target[r++] = target;
    }
    const vb = layout.valueBase[n]!;
    for (let i = 0; i < c.values.length; i++) {
      const f = c.values[i]!;
      const x = layout.values[vb + i]!;
      if (!Number.isSafeInteger(x) || x < f.min || x > f.max) {
        throw new AsmError(where(n), undefined, `value ${x} is outside ${f.min}..${f.max}, the range template ${c.name} was assembled for`);
      }
      const at = off + f.offset;
      if (f.width === 1) view.setInt8(at, x);
      else if (f.width === 2) view.setInt16(at, x, true);
      else if (f.width === 4) view.setInt32(at, x, true);
      else if (f.width === 8) view.setBigInt64(at, BigInt(x), true);
    }
  }
  return refs;
}

/**
 * Reads back every rel32 field written and every `call __fentry__` site and
 * compares them with the final symbol table: a wrong offset, an overlap or a
 * stale symbol shows up here rather than as a wild call in the guest.
 */
export function checkLinked(
  bytes: Uint8Array,
  programBase: bigint,
  refs: PatchedRefs,
  mcountLoc: readonly bigint[],
  addressOf: (name: string) => bigint | undefined,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsetOf = (name: string): number | undefined => {
    const a = addressOf(name);
    return a === undefined ? undefined : Number(BigInt.asIntN(64, a - programBase));
  };
  for (let r = 0; r < refs.at.length; r++) {
    const at = refs.at[r]!;
    const reached = at + view.getInt32(at, true) - refs.addend[r]!;
    if (offsetOf(refs.target[r]!) !== reached) {
      throw new AsmError('link check', undefined, `the rel32 at 0x${(programBase + BigInt(at)).toString(16)} does not reach ${refs.target[r]}`);
    }
  }
  const fentry = offsetOf('__fentry__');
  for (const a of mcountLoc) {
    const at = Number(a - programBase);
    if (bytes[at] !== 0xe8 || at + 5 + view.getInt32(at + 1, true) !== fentry) {
      throw new AsmError('link check', undefined, `__mcount_loc entry 0x${a.toString(16)} is not a call to __fentry__`);
    }
  }
}
