// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Function templates: assembly source with holes, assembled once per distinct
 * template instead of once per function.
 *
 * A template is assembled by Keystone a few times, each time with one hole or
 * the address changed; the bytes that change are the template's relocations.
 * So the relocation table comes from the assembler's own output, and each
 * entry is checked against every probe (same size, the field decodes to the
 * expected target in each), rather than from our own reading of x86
 * encodings. Laying an instance out is then a copy and a few patched fields
 * (link.ts), which gives the bytes Keystone would give for the same source at
 * that address.
 */
import { AsmError, IDENT_RE, LABEL_RE, MCOUNT_PREFIX, PROFILE_HOOK, assembleUnit, def, prepare, type PreparedUnit, type ProfileCall } from './unit.js';
import { KeystoneError } from './keystone.js';

/** A numeric hole and the range over which its encoding keeps one size. */
export interface ValueHole {
  name: string;
  min: number;
  max: number;
}

export interface AsmTemplate {
  /** Distinct name, shown in errors. */
  name: string;
  /** AT&T source; `{{hole}}` stands for a label, a symbol or a value. */
  text: string;
  /** Holes that are label definitions (a function's name), in order. */
  labels: readonly string[];
  /** Holes that are symbol references (call targets, data), in order. */
  symbols: readonly string[];
  values: readonly ValueHole[];
}

/** One function: which template, and its holes' contents in the template's order. */
export interface TemplateInstance {
  template: number;
  labels: readonly string[];
  symbols: readonly string[];
  values: readonly number[];
}

/**
 * A unit of generated code: `count` instances laid out back to back, in the
 * way a source unit holding all their sources one after another would be.
 * Instances are read through accessors rather than as objects: at 200,000
 * functions, objects made only to be read once are what costs.
 */
export interface TemplateUnit {
  kind: 'template';
  name: string;
  templates: readonly AsmTemplate[];
  count: number;
  /** Instance k's template, an index into `templates`. */
  templateOf(k: number): number;
  /** Instance k's label hole j (the template's order). */
  label(k: number, j: number): string;
  symbol(k: number, j: number): string;
  value(k: number, j: number): number;
}

/** A template unit over instances given as objects: for a few functions. */
export function templateUnit(name: string, templates: readonly AsmTemplate[], instances: readonly TemplateInstance[]): TemplateUnit {
  return {
    kind: 'template',
    name,
    templates,
    count: instances.length,
    templateOf: (k) => instances[k]!.template,
    label: (k, j) => instances[k]!.labels[j]!,
    symbol: (k, j) => instances[k]!.symbols[j]!,
    value: (k, j) => instances[k]!.values[j]!,
  };
}

/** Instance k of a unit as an object. */
export function instanceOf(u: TemplateUnit, k: number): TemplateInstance {
  const t = u.templates[u.templateOf(k)]!;
  return {
    template: u.templateOf(k),
    labels: t.labels.map((_, j) => u.label(k, j)),
    symbols: t.symbols.map((_, j) => u.symbol(k, j)),
    values: t.values.map((_, j) => u.value(k, j)),
  };
}

/** A rel32 reference: field = target + addend - (address of the field). */
export interface Reloc {
  offset: number;
  addend: number;
  /** Index into the template's symbol holes, or -1 for an outside symbol named by `name`. */
  hole: number;
  name: string;
  /** A jmp/jcc rel32 that an assembler would shorten when the target is near. */
  relaxable: boolean;
}

export interface ValueField {
  offset: number;
  /** Bytes, little-endian two's complement; 0 when the hole's range is one value. */
  width: number;
  min: number;
  max: number;
}

export interface CompiledTemplate {
  name: string;
  bytes: Uint8Array;
  /** Offset of each label hole. */
  labelOffsets: number[];
  /** Offsets of the `call __fentry__` sites. */
  mcountOffsets: number[];
  relocs: Reloc[];
  values: ValueField[];
}

const HOLE_RE = /\{\{(\w+)\}\}/g;

/** The source of one instance, as a person (or the reference assembly) would write it. */
export function renderInstance(t: AsmTemplate, inst: TemplateInstance): string {
  return t.text.replace(HOLE_RE, (whole, h: string) => {
    let i = t.labels.indexOf(h);
    if (i >= 0) return inst.labels[i]!;
    i = t.symbols.indexOf(h);
    if (i >= 0) return inst.symbols[i]!;
    i = t.values.findIndex((v) => v.name === h);
    if (i >= 0) return String(inst.values[i]!);
    throw new AsmError(t.name, undefined, `unknown hole ${whole}`);
  });
}

/** The source of instances [from, to) of a unit: what the template layout stands for. */
export function renderUnit(u: TemplateUnit, from = 0, to = u.count): string {
  const parts: string[] = [];
  for (let k = from; k < to; k++) {
    const inst = instanceOf(u, k);
    parts.push(renderInstance(u.templates[inst.template]!, inst));
  }
  return parts.join('\n') + '\n';
}

const probeLabel = (i: number) => `__tpl_label_${i}`;
const probeSymbol = (i: number) => `__tpl_sym_${i}`;
/** Far enough apart that no reference can take a short form, close enough for rel32. */
const SYMBOL_SPACING = 0x1000000n;
const SYMBOL_DELTA = 0x01010101n; // changes every byte of a 32-bit field
const BASE_SHIFT = 0x1001n; // odd: a template whose size depends on alignment shows up

const int32At = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset + o, 4).getInt32(0, true);

function signedAt(b: Uint8Array, o: number, width: number): number {
  const v = new DataView(b.buffer, b.byteOffset + o, width);
  if (width === 1) return v.getInt8(0);
  if (width === 2) return v.getInt16(0, true);
  if (width === 4) return v.getInt32(0, true);
  return Number(v.getBigInt64(0, true));
}

/** Offsets where a and b differ. */
function diff(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

interface Probe {
  code: Uint8Array;
  labelAddrs: bigint[];
}

/**
 * Assembles a template with Keystone (initKeystone() awaited) and derives its
 * relocations. `base` is any address near where instances go (within rel32
 * reach of the outside symbols' probe values is all that matters).
 */
export function compileTemplate(t: AsmTemplate, base: bigint, profile: ProfileCall = 'fentry'): CompiledTemplate {
  const fail = (reason: string): never => {
    throw new AsmError(`template ${t.name}`, undefined, reason);
  };
  const used = new Set([...t.text.matchAll(HOLE_RE)].map((m) => m[1]!));
  for (const h of [...t.labels, ...t.symbols, ...t.values.map((v) => v.name)]) if (!used.has(h)) fail(`hole {{${h}}} is not used`);
  for (const v of t.values) if (!(Number.isSafeInteger(v.min) && Number.isSafeInteger(v.max) && v.min <= v.max)) fail(`bad range for {{${v.name}}}`);

  const source = (values: readonly number[]) =>
    renderInstance(t, { template: 0, labels: t.labels.map((_, i) => probeLabel(i)), symbols: t.symbols.map((_, i) => probeSymbol(i)), values });
  const prepared = (values: readonly number[]): PreparedUnit => prepare({ name: `template ${t.name}`, text: source(values) }, 0, profile);
  const mins = t.values.map((v) => v.min);
  const u = prepared(mins);

  const holeLabels = new Set(t.labels.map((_, i) => probeLabel(i)));
  for (const l of u.labels) if (!holeLabels.has(l) && !l.startsWith(MCOUNT_PREFIX)) fail(`label ${l} would be defined by every instance: make it a hole`);
  // Symbols: the holes, then every other name an operand uses (__fentry__, data).
  const names: string[] = t.symbols.map((_, i) => probeSymbol(i));
  const holeOf = (name: string) => (name.startsWith('__tpl_sym_') ? Number(name.slice('__tpl_sym_'.length)) : -1);
  for (const stmt of u.lines.flatMap((l) => l.split(';'))) {
    const body = stmt.replace(LABEL_RE, '').trim();
    if (!body || (body.startsWith('.') && !/^\.(byte|word|long|quad)\b/.test(body))) continue;
    const ids = [...body.replace(/^(lock|rep|repz|repnz|repe|repne)\s+/, '').matchAll(IDENT_RE)].map((m) => m[0]);
    for (const id of body.startsWith('.') ? ids : ids.slice(1)) if (!names.includes(id) && !u.labels.includes(id)) names.push(id);
  }
  const symbolValue = (i: number) => base + SYMBOL_SPACING * BigInt(i + 1);

  const assemble = (at: bigint, syms: readonly bigint[], values: readonly number[]): Probe => {
    const pu = values === mins ? u : prepared(values);
    try {
      return assembleUnit(pu, at, names.map((n, i) => def(n, syms[i]!)));
    } catch (e) {
      if (e instanceof KeystoneError) fail(`Keystone: ${e.message}\n${source(values)}`);
      throw e;
    }
  };
  const syms0 = names.map((_, i) => symbolValue(i));
  const a = assemble(base, syms0, mins);
  const size = a.code.length;
  const sameSize = (p: Probe, what: string) => {
    if (p.code.length !== size) fail(`its size changes with ${what} (${size} -> ${p.code.length} bytes)`);
  };

  // Moved by an odd number of bytes: labels keep their offsets, and only rel32
  // fields to outside symbols change.
  const shifted = assemble(base + BASE_SHIFT, syms0, mins);
  sameSize(shifted, 'its address');
  const labelOffsets = (p: Probe, at: bigint) => p.labelAddrs.map((x) => Number(x - at));
  const offsA = labelOffsets(a, base);
  if (labelOffsets(shifted, base + BASE_SHIFT).some((o, i) => o !== offsA[i])) fail('its label offsets change with its address');

  const relocs: Reloc[] = [];
  const covered = new Set<number>();
  names.forEach((name, i) => {
    const moved = syms0.slice();
    moved[i] = syms0[i]! + SYMBOL_DELTA;
    const p = assemble(base, moved, mins);
    sameSize(p, `the value of ${name}`);
    const d = diff(a.code, p.code);
    for (let k = 0; k < d.length; k += 4) {
      const o = d[k]!;
      if (d[k + 3] !== o + 3) fail(`a reference to ${name} at +${o} is not a 32-bit field`);
      const addend = int32At(a.code, o) - Number(syms0[i]! - (base + BigInt(o)));
      const check = (code: Uint8Array, at: bigint, target: bigint) => int32At(code, o) === Number(target + BigInt(addend) - (at + BigInt(o)));
      if (addend > 0 || addend < -12 || !check(p.code, base, moved[i]!) || !check(shifted.code, base + BASE_SHIFT, syms0[i]!)) {
        fail(`a reference to ${name} at +${o} is not rel32 (only rel32 references are relocated)`);
      }
      const relaxable = (o >= 1 && a.code[o - 1] === 0xe9) || (o >= 2 && a.code[o - 2] === 0x0f && (a.code[o - 1]! & 0xf0) === 0x80);
      relocs.push({ offset: o, addend, hole: holeOf(name), name: holeOf(name) >= 0 ? t.symbols[holeOf(name)]! : name, relaxable });
      for (let b = o; b < o + 4; b++) covered.add(b);
    }
  });
  for (const o of diff(a.code, shifted.code)) if (!covered.has(o)) fail(`byte +${o} depends on the address but is no rel32 reference`);

  const values: ValueField[] = t.values.map((v, i) => {
    if (v.min === v.max) return { offset: 0, width: 0, min: v.min, max: v.max };
    const at = (x: number) => {
      const vals = mins.slice();
      vals[i] = x;
      const p = assemble(base, syms0, vals);
      sameSize(p, `{{${v.name}}} = ${x}`);
      return p.code;
    };
    const hi = at(v.max);
    const mid = at(Math.floor((v.min + v.max) / 2));
    const d = diff(a.code, hi);
    if (d.length === 0) fail(`{{${v.name}}} changes no byte`);
    const lo = d[0]!;
    const last = d[d.length - 1]!;
    for (const width of [1, 2, 4, 8]) {
      for (let o = Math.max(0, last - width + 1); o <= lo && o + width <= size; o++) {
        if (signedAt(a.code, o, width) === v.min && signedAt(hi, o, width) === v.max && signedAt(mid, o, width) === Math.floor((v.min + v.max) / 2)) {
          if (relocs.some((r) => r.offset < o + width && o < r.offset + 4)) fail(`{{${v.name}}} overlaps a reference`);
          return { offset: o, width, min: v.min, max: v.max };
        }
      }
    }
    return fail(`{{${v.name}}} is not one little-endian field`);
  });

  const mcountOffsets = u.labels.map((l, i) => (l.startsWith(MCOUNT_PREFIX) ? offsA[i]! : -1)).filter((o) => o >= 0);
  for (const o of mcountOffsets) {
    const hook = PROFILE_HOOK[profile];
    if (a.code[o] !== 0xe8 || !relocs.some((r) => r.offset === o + 1 && r.name === hook)) fail(`the FENTRY at +${o} is not a call to ${hook}`);
  }
  return {
    name: t.name,
    bytes: a.code,
    labelOffsets: t.labels.map((_, i) => offsA[u.labels.indexOf(probeLabel(i))]!),
    mcountOffsets,
    relocs: relocs.sort((x, y) => x.offset - y.offset),
    values,
  };
}
