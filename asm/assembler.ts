// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Assembles a program out of source units laid out one after another, the way
 * a linker lays out object files: each unit at its own address, labels global
 * across units, outside symbols given as `name = 0x...`.
 *
 * Keystone has no cross-chunk symbol resolution (KS_OPT_SYM_RESOLVER cannot be
 * used from wasm), so a unit that names a label of a later unit is assembled
 * twice: first against a placeholder within rel32 reach, then against the real
 * address once the layout is known. Label addresses come from the assembler
 * itself: each unit ends with one `.quad label` per label, sliced off after.
 *
 * A source line `FENTRY` is what -mfentry puts at a function's start: it
 * becomes `call __fentry__`, and its address goes into the program's
 * mcountLoc list, our __mcount_loc section.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { join } from 'node:path';
import { KS_ERR_ASM_SYMBOL_MISSING, KeystoneError, initKeystone, ksAssemble } from './keystone.js';
import { SymbolTable, type KSymbol } from './symbols.js';
import { hex } from '../emu/hex.js';

export interface SourceUnit {
  /** Shown in errors: a file name or a generated chunk's name. */
  name: string;
  text: string;
}

export interface AssembledUnit {
  name: string;
  base: bigint;
  size: number;
}

export interface Program {
  base: bigint;
  bytes: Uint8Array;
  units: AssembledUnit[];
  symbols: SymbolTable;
  /** Addresses of the `call __fentry__` sites, in source order. */
  mcountLoc: bigint[];
  fromCache: boolean;
}

export interface AssembleOptions {
  base: bigint;
  /** Symbols defined outside the program (data, other regions). */
  externals?: ReadonlyMap<string, bigint>;
  /** Units start on this alignment. */
  align?: number;
  /** Directory for a cache of assembled output keyed by a hash of everything that goes in. */
  cacheDir?: string;
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

const MCOUNT_PREFIX = '__mcount_loc_';
const LABEL_RE = /^\s*([A-Za-z_]\w*)\s*:/;
const IDENT_RE = /(?<![%\w.])[A-Za-z_]\w*/g;
const CACHE_VERSION = 1;

interface PreparedUnit {
  name: string;
  /** Source after FENTRY expansion and comment removal, line numbers kept. */
  lines: string[];
  labels: string[];
  idents: Set<string>;
}

function stripComment(line: string): string {
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
function expandNumericLabels(lines: string[], unitIndex: number): string[] {
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

function prepare(unit: SourceUnit, unitIndex: number): PreparedUnit {
  const labels: string[] = [];
  let fentry = 0;
  const raw = unit.text.split('\n').map((r) => {
    const line = stripComment(r);
    return line.trim() === 'FENTRY' ? `${MCOUNT_PREFIX}${unitIndex}_${fentry++}: call __fentry__` : line;
  });
  const lines = expandNumericLabels(raw, unitIndex);
  for (const line of lines) {
    const m = LABEL_RE.exec(line);
    if (m) labels.push(m[1]!);
  }
  const idents = new Set<string>();
  for (const line of lines) for (const m of line.matchAll(IDENT_RE)) idents.add(m[0]);
  for (const l of labels) idents.delete(l);
  return { name: unit.name, lines, labels, idents };
}

const ADDRESS_MARK = ' #addr';
/** `name = value`, marked as an address when it is one (see assembleUnit). */
function def(name: string, v: bigint): string {
  return `${name} = ${hex(v)}` + (v >= 1n << 32n ? ADDRESS_MARK : '');
}

function alignUp(v: bigint, a: number): bigint {
  const A = BigInt(a);
  return ((v + A - 1n) / A) * A;
}

/** Assembles one unit; returns its code bytes and the addresses of its labels. */
function assembleUnit(u: PreparedUnit, base: bigint, defs: string[]): { code: Uint8Array; labelAddrs: bigint[] } {
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
function diagnose(u: PreparedUnit, base: bigint, known: ReadonlyMap<string, bigint>, err: KeystoneError): AsmError {
  const defined = new Set([...known.keys(), ...u.labels]);
  const operands = (body: string) =>
    // The first identifier is the mnemonic (after any prefix such as `lock`).
    [...body.replace(/^(lock|rep|repz|repnz|repe|repne)\s+/, '').matchAll(IDENT_RE)].map((m) => m[0]).slice(1);
  if (err.code === KS_ERR_ASM_SYMBOL_MISSING) {
    for (let i = 0; i < u.lines.length; i++) {
      const body = u.lines[i]!.replace(LABEL_RE, '').trim();
      if (body.startsWith('.') && !/^\.(byte|word|long|quad)\b/.test(body)) continue;
      const missing = operands(body).find((id) => !defined.has(id));
      if (missing) return new AsmError(u.name, i + 1, `undefined symbol ${missing}`, u.lines[i]);
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

interface CacheEntry {
  units: { name: string; base: string; size: number }[];
  symbols: { name: string; address: string; size: number }[];
  mcountLoc: string[];
}

function cacheKey(units: readonly SourceUnit[], opts: AssembleOptions): string {
  const h = createHash('sha256');
  h.update(`v${CACHE_VERSION}\0${opts.base}\0${opts.align ?? 16}\0`);
  for (const [k, v] of [...(opts.externals ?? new Map()).entries()].sort()) h.update(`${k}=${v}\0`);
  for (const u of units) h.update(`${u.name}\0${u.text}\0`);
  return h.digest('hex').slice(0, 32);
}

function readCache(dir: string, key: string, base: bigint): Program | undefined {
  const meta = join(dir, `${key}.json`);
  const bin = join(dir, `${key}.bin`);
  if (!existsSync(meta) || !existsSync(bin)) return undefined;
  try {
    const e = JSON.parse(readFileSync(meta, 'utf8')) as CacheEntry;
    return {
      base,
      bytes: new Uint8Array(readFileSync(bin)),
      units: e.units.map((u) => ({ name: u.name, base: BigInt(u.base), size: u.size })),
      symbols: new SymbolTable(e.symbols.map((s) => ({ name: s.name, address: BigInt(s.address), size: s.size }))),
      mcountLoc: e.mcountLoc.map((a) => BigInt(a)),
      fromCache: true,
    };
  } catch {
    return undefined; // a damaged cache entry is simply rebuilt
  }
}

function writeCache(dir: string, key: string, p: Program): void {
  try {
    mkdirSync(dir, { recursive: true });
    const e: CacheEntry = {
      units: p.units.map((u) => ({ name: u.name, base: hex(u.base), size: u.size })),
      symbols: p.symbols.all().map((s) => ({ name: s.name, address: hex(s.address), size: s.size })),
      mcountLoc: p.mcountLoc.map(hex),
    };
    // Write then rename, so a concurrent reader never sees half a file.
    const tmp = `.${process.pid}.${threadId}.tmp`; // worker threads share the pid
    writeFileSync(join(dir, key + '.bin' + tmp), p.bytes);
    writeFileSync(join(dir, key + '.json' + tmp), JSON.stringify(e));
    renameSync(join(dir, key + '.bin' + tmp), join(dir, key + '.bin'));
    renameSync(join(dir, key + '.json' + tmp), join(dir, key + '.json'));
  } catch {
    // The cache is an optimisation: a read-only checkout still assembles.
  }
}

export async function assembleProgram(units: readonly SourceUnit[], opts: AssembleOptions): Promise<Program> {
  const key = opts.cacheDir ? cacheKey(units, opts) : '';
  if (opts.cacheDir) {
    const hit = readCache(opts.cacheDir, key, opts.base);
    if (hit) return hit;
  }
  await initKeystone();
  const align = opts.align ?? 16;
  const prepared = units.map(prepare);

  const owner = new Map<string, number>();
  prepared.forEach((u, i) => {
    for (const l of u.labels) {
      const prev = owner.get(l);
      if (prev !== undefined) throw new AsmError(u.name, undefined, `label ${l} is also defined in ${prepared[prev]!.name}`);
      if (opts.externals?.has(l)) throw new AsmError(u.name, undefined, `label ${l} is also an outside symbol`);
      owner.set(l, i);
    }
  });

  const known = new Map<string, bigint>(opts.externals ?? []);
  const placed: { base: bigint; code: Uint8Array; needsSecondPass: boolean }[] = [];
  let addr = opts.base;
  for (const u of prepared) {
    addr = alignUp(addr, align);
    const defs: string[] = [];
    let needsSecondPass = false;
    for (const id of u.idents) {
      const v = known.get(id);
      if (v !== undefined) defs.push(def(id, v));
      else if (owner.has(id)) {
        defs.push(def(id, addr)); // a later unit's label: placeholder in reach
        needsSecondPass = true;
      }
    }
    let res;
    try {
      res = assembleUnit(u, addr, defs);
    } catch (e) {
      if (e instanceof KeystoneError) throw diagnose(u, addr, known, e);
      throw e;
    }
    u.labels.forEach((l, i) => known.set(l, res.labelAddrs[i]!));
    placed.push({ base: addr, code: res.code, needsSecondPass });
    addr += BigInt(res.code.length);
  }

  prepared.forEach((u, i) => {
    const p = placed[i]!;
    if (!p.needsSecondPass) return;
    const defs = [...u.idents].filter((id) => known.has(id)).map((id) => def(id, known.get(id)!));
    const { code } = assembleUnit(u, p.base, defs);
    if (code.length !== p.code.length) {
      throw new AsmError(u.name, undefined, `size changed from ${p.code.length} to ${code.length} bytes once forward labels were known: use 5-byte branch forms across units`);
    }
    p.code = code;
  });

  const total = Number(addr - opts.base);
  const bytes = new Uint8Array(total).fill(0xcc); // int3 padding between units, as the kernel pads
  for (const p of placed) bytes.set(p.code, Number(p.base - opts.base));

  const mcountLoc: bigint[] = [];
  const syms: KSymbol[] = [];
  prepared.forEach((u, i) => {
    const p = placed[i]!;
    const unitEnd = p.base + BigInt(p.code.length);
    const addrs = u.labels.map((l) => known.get(l)!);
    // A label's size runs to the next label at a higher address, or the unit's end.
    const order = addrs.map((_, j) => j).sort((x, y) => (addrs[x]! < addrs[y]! ? -1 : addrs[x]! > addrs[y]! ? 1 : 0));
    const real = order.filter((j) => !u.labels[j]!.startsWith(MCOUNT_PREFIX));
    real.forEach((j, k) => {
      let end = unitEnd;
      for (let n = k + 1; n < real.length; n++) {
        if (addrs[real[n]!]! > addrs[j]!) {
          end = addrs[real[n]!]!;
          break;
        }
      }
      syms.push({ name: u.labels[j]!, address: addrs[j]!, size: Number(end - addrs[j]!) });
    });
    for (const j of order) if (u.labels[j]!.startsWith(MCOUNT_PREFIX)) mcountLoc.push(addrs[j]!);
  });

  const program: Program = {
    base: opts.base,
    bytes,
    units: prepared.map((u, i) => ({ name: u.name, base: placed[i]!.base, size: placed[i]!.code.length })),
    symbols: new SymbolTable(syms),
    mcountLoc,
    fromCache: false,
  };
  if (opts.cacheDir) writeCache(opts.cacheDir, key, program);
  return program;
}
