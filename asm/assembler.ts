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
 *
 * Template units (generated code: thousands of functions made from a handful
 * of templates) come after the source units: Keystone assembles each distinct
 * template once (template.ts) and the linker lays the instances out (link.ts).
 * The cache holds only Keystone's output, checked on every read (cache.ts).
 */
import { createHash } from 'node:crypto';
import { readEntry, writeEntry, type SourcePart } from './cache.js';
import { KeystoneError, initKeystone } from './keystone.js';
import { checkLinked, layoutTemplateUnits, writeTemplateUnits, type Layout } from './link.js';
import { SymbolTable, symbolOrder, type KSymbol } from './symbols.js';
import { compileTemplate, type AsmTemplate, type CompiledTemplate, type TemplateUnit } from './template.js';
import { AsmError, MCOUNT_PREFIX, PROFILE_HOOK, alignUp, assembleUnit, def, diagnose, prepare, type ProfileCall, type SourceUnit } from './unit.js';

export { AsmError, type SourceUnit } from './unit.js';
export { templateUnit, type AsmTemplate, type TemplateInstance, type TemplateUnit } from './template.js';

/** What a program is made of: source units first, then template units. */
export type ProgramUnit = SourceUnit | TemplateUnit;

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
  /** Whether Keystone's part came from the cache (templates are laid out either way). */
  fromCache: boolean;
  /** Set when a cache entry was found damaged and assembled again. */
  cacheMessage?: string;
}

export interface AssembleOptions {
  base: bigint;
  /** Symbols defined outside the program (data, other regions). */
  externals?: ReadonlyMap<string, bigint>;
  /** Units start on this alignment. */
  align?: number;
  /** Directory for a cache of assembled output keyed by a hash of everything that goes in. */
  cacheDir?: string;
  /** Told when the cache had to be rebuilt; by default a line on stderr. */
  onCacheMessage?: (message: string) => void;
  /** What FENTRY becomes (ProfileCall): fentry by default. */
  profile?: ProfileCall;
}

const CACHE_VERSION = 3;

const isTemplate = (u: ProgramUnit): u is TemplateUnit => (u as TemplateUnit).kind === 'template';
const templateKey = (t: AsmTemplate) => JSON.stringify([t.name, t.text, t.labels, t.symbols, t.values]);

function cacheKey(sources: readonly SourceUnit[], templateKeys: readonly string[], opts: AssembleOptions): string {
  const h = createHash('sha256');
  h.update(`v${CACHE_VERSION}\0${opts.base}\0${opts.align ?? 16}\0${opts.profile ?? 'fentry'}\0`);
  for (const [k, v] of [...(opts.externals ?? new Map()).entries()].sort()) h.update(`${k}=${v}\0`);
  for (const u of sources) h.update(`${u.name}\0${u.text}\0`);
  for (const t of templateKeys) h.update(`${t}\0`);
  return h.digest('hex').slice(0, 32);
}

export async function assembleProgram(units: readonly ProgramUnit[], opts: AssembleOptions): Promise<Program> {
  const align = opts.align ?? 16;
  const externals: ReadonlyMap<string, bigint> = opts.externals ?? new Map();
  const firstTemplate = units.findIndex(isTemplate);
  const sources = (firstTemplate < 0 ? units : units.slice(0, firstTemplate)) as SourceUnit[];
  const templateUnits: TemplateUnit[] = [];
  for (const u of units.slice(sources.length)) {
    if (!isTemplate(u)) throw new AsmError(u.name, undefined, 'source units must come before template units');
    templateUnits.push(u);
  }
  const distinct = new Map<string, AsmTemplate>();
  for (const u of templateUnits) for (const t of u.templates) distinct.set(templateKey(t), t);
  const keys = [...distinct.keys()].sort();

  const key = opts.cacheDir ? cacheKey(sources, keys, opts) : '';
  let part: SourcePart | undefined;
  let cacheMessage: string | undefined;
  if (opts.cacheDir) {
    const r = readEntry(opts.cacheDir, key, opts.base);
    if (r && 'part' in r && r.part.templates.length === keys.length) part = r.part;
    else if (r && 'damaged' in r) cacheMessage = `assembly cache entry damaged (${r.damaged}): assembled again and rewritten`;
  }
  const fromCache = part !== undefined;
  if (!part) {
    await initKeystone();
    part = assembleSources(sources, opts.base, align, externals, opts.profile ?? 'fentry');
    const at = alignUp(opts.base + BigInt(part.bytes.length), align);
    part.templates = keys.map((k) => compileTemplate(distinct.get(k)!, at, opts.profile));
    if (opts.cacheDir) writeEntry(opts.cacheDir, key, part);
  }
  if (cacheMessage) (opts.onCacheMessage ?? ((m: string) => process.stderr.write(`ftrace-sim: ${m}\n`)))(cacheMessage);

  const compiledByKey = new Map(keys.map((k, i) => [k, part.templates[i]!]));
  const compiled: CompiledTemplate[][] = templateUnits.map((u) => u.templates.map((t) => compiledByKey.get(templateKey(t))!));
  const sourceSyms = new Map(part.symbols.map((s) => [s.name, s.address]));
  const layout = layoutTemplateUnits(templateUnits, compiled, opts.base, opts.base + BigInt(part.bytes.length), align);
  const bytes = new Uint8Array(Number(layout.end - opts.base)).fill(0xcc); // int3 padding between units, as the kernel pads
  bytes.set(part.bytes, 0);
  const outside = (name: string): number | undefined => {
    const v = sourceSyms.get(name) ?? externals.get(name);
    return v === undefined ? undefined : Number(BigInt.asIntN(64, v - opts.base));
  };
  const refs = writeTemplateUnits(templateUnits, layout, bytes, outside);
  if (layout.block.index.size !== layout.block.names.length) throw duplicateLabel(layout, opts.base);
  for (const s of part.symbols) if (layout.block.index.has(s.name)) throw new AsmError(unitOfLabel(s.name, layout, opts.base), undefined, `label ${s.name} is defined twice`);
  for (const name of externals.keys()) if (layout.block.index.has(name)) throw new AsmError(unitOfLabel(name, layout, opts.base), undefined, `label ${name} is also an outside symbol`);
  const symbols = new SymbolTable(part.symbols.slice().sort(symbolOrder), layout.block);
  checkLinked(bytes, opts.base, refs, layout.mcountLoc, symbols, externals, PROFILE_HOOK[opts.profile ?? 'fentry']);

  const program: Program = {
    base: opts.base,
    bytes,
    units: [...part.units, ...layout.units],
    symbols,
    mcountLoc: [...part.mcountLoc, ...layout.mcountLoc],
    fromCache,
  };
  if (cacheMessage) program.cacheMessage = cacheMessage;
  return program;
}

/** The unit whose instances define `name`. */
function unitOfLabel(name: string, layout: Layout, programBase: bigint): string {
  const at = programBase + BigInt(layout.block.starts[layout.block.index.get(name) ?? 0] ?? 0);
  return layout.units.find((u) => at >= u.base && at < u.base + BigInt(u.size))?.name ?? 'template units';
}

/** The error for a label defined twice (found by the label index having fewer names than labels). */
function duplicateLabel(layout: Layout, programBase: bigint): AsmError {
  const seen = new Set<string>();
  for (const name of layout.block.names) {
    if (seen.has(name)) return new AsmError(unitOfLabel(name, layout, programBase), undefined, `label ${name} is defined twice`);
    seen.add(name);
  }
  return new AsmError('template units', undefined, 'a label is defined twice');
}

/** The source units through Keystone, laid out from `base`. */
function assembleSources(units: readonly SourceUnit[], base: bigint, align: number, externals: ReadonlyMap<string, bigint>, profile: ProfileCall): SourcePart {
  const prepared = units.map((u, i) => prepare(u, i, profile));

  const owner = new Map<string, number>();
  prepared.forEach((u, i) => {
    for (const l of u.labels) {
      const prev = owner.get(l);
      if (prev !== undefined) throw new AsmError(u.name, undefined, `label ${l} is also defined in ${prepared[prev]!.name}`);
      if (externals?.has(l)) throw new AsmError(u.name, undefined, `label ${l} is also an outside symbol`);
      owner.set(l, i);
    }
  });

  const known = new Map<string, bigint>(externals ?? []);
  const placed: { base: bigint; code: Uint8Array; needsSecondPass: boolean }[] = [];
  let addr = base;
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

  const total = Number(addr - base);
  const bytes = new Uint8Array(total).fill(0xcc); // int3 padding between units, as the kernel pads
  for (const p of placed) bytes.set(p.code, Number(p.base - base));

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

  return {
    bytes,
    units: prepared.map((u, i) => ({ name: u.name, base: placed[i]!.base, size: placed[i]!.code.length })),
    symbols: syms,
    mcountLoc,
    templates: [],
  };
}
