// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The assembly cache: what Keystone produced (the source units' bytes and
 * symbols, the compiled templates), keyed by a hash of everything that went
 * in. One file per entry: a header with the lengths and a SHA-256 of the
 * rest, then JSON, then the bytes. A file that fails any check (short,
 * checksum, structure) is reported and assembled again, never used. The
 * directory is kept to a few entries: the oldest go first.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { hex } from '../emu/hex.js';
import type { CompiledTemplate } from './template.js';

export interface CachedSymbol {
  name: string;
  address: bigint;
  size: number;
}

/** Keystone's part of a program. */
export interface SourcePart {
  bytes: Uint8Array;
  units: { name: string; base: bigint; size: number }[];
  symbols: CachedSymbol[];
  mcountLoc: bigint[];
  /** The distinct templates, compiled. */
  templates: CompiledTemplate[];
}

const MAGIC = 'FTSIMAS2';
const HEADER = 8 + 4 + 4 + 32;
export const CACHE_MAX_ENTRIES = 8;
export const CACHE_MAX_BYTES = 16 * 1024 * 1024;
const ENTRY_RE = /^[0-9a-f]{32}\.asm$/;
/** Files of the previous cache format (.json + .bin), which nothing reads any more. */
const OLD_ENTRY_RE = /^[0-9a-f]{32}\.(json|bin)$/;

export function cacheFile(dir: string, key: string): string {
  return join(dir, `${key}.asm`);
}


export function encodeEntry(p: SourcePart): Uint8Array {
  const json = Buffer.from(
    JSON.stringify({
      units: p.units.map((u) => ({ name: u.name, base: hex(u.base), size: u.size })),
      symbols: p.symbols.map((s) => [s.name, hex(s.address), s.size]),
      mcountLoc: p.mcountLoc.map(hex),
      templates: p.templates.map((t) => ({ ...t, bytes: Buffer.from(t.bytes).toString('hex') })),
    }),
  );
  const head = Buffer.alloc(HEADER);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 8);
  head.writeUInt32LE(p.bytes.length, 12);
  createHash('sha256').update(json).update(p.bytes).digest().copy(head, 16);
  return Buffer.concat([head, json, p.bytes]);
}

/** Decodes and checks an entry; returns the reason when it cannot be used. */
export function decodeEntry(file: Uint8Array, base: bigint): SourcePart | string {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < HEADER || buf.toString('latin1', 0, 8) !== MAGIC) return 'no cache header';
  const jl = buf.readUInt32LE(8);
  const bl = buf.readUInt32LE(12);
  if (buf.length !== HEADER + jl + bl) return `${buf.length} bytes where the header says ${HEADER + jl + bl}`;
  const json = buf.subarray(HEADER, HEADER + jl);
  const bytes = new Uint8Array(buf.subarray(HEADER + jl));
  if (!createHash('sha256').update(json).update(bytes).digest().equals(buf.subarray(16, 48))) return 'checksum mismatch';
  let e: {
    units: { name: string; base: string; size: number }[];
    symbols: [string, string, number][];
    mcountLoc: string[];
    templates: (Omit<CompiledTemplate, 'bytes'> & { bytes: string })[];
  };
  try {
    e = JSON.parse(json.toString('utf8'));
    const end = base + BigInt(bytes.length);
    const within = (a: bigint, n = 0) => a >= base && a + BigInt(n) <= end;
    const units = e.units.map((u) => ({ name: u.name, base: BigInt(u.base), size: u.size }));
    const symbols = e.symbols.map(([name, a, size]) => ({ name, address: BigInt(a), size }));
    const mcountLoc = e.mcountLoc.map((a) => BigInt(a));
    if (units.some((u) => !within(u.base, u.size))) return 'a unit lies outside the cached bytes';
    if (symbols.some((s) => !within(s.address, s.size))) return 'a symbol lies outside the cached bytes';
    if (mcountLoc.some((a) => !within(a, 5) || bytes[Number(a - base)] !== 0xe8)) return 'an __mcount_loc entry is not a call';
    const templates = e.templates.map((t) => {
        const b = Uint8Array.from(Buffer.from(t.bytes, 'hex'));
        const ok =
          b.length * 2 === t.bytes.length &&
          t.labelOffsets.every((o) => o >= 0 && o < b.length) &&
          t.mcountOffsets.every((o) => b[o] === 0xe8) &&
          t.relocs.every((r) => r.offset >= 0 && r.offset + 4 <= b.length) &&
          t.values.every((v) => v.offset >= 0 && v.offset + v.width <= b.length);
        if (!ok) throw new Error(`template ${t.name} is inconsistent`);
        return { ...t, bytes: b };
    });
    return { bytes, units, symbols, mcountLoc, templates };
  } catch (err) {
    return `unreadable contents (${(err as Error).message})`;
  }
}

export type CacheRead = { part: SourcePart } | { damaged: string } | undefined;

export function readEntry(dir: string, key: string, base: bigint): CacheRead {
  const file = cacheFile(dir, key);
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch {
    return undefined;
  }
  const r = decodeEntry(raw, base);
  return typeof r === 'string' ? { damaged: `${file}: ${r}` } : { part: r };
}

export function writeEntry(dir: string, key: string, p: SourcePart): void {
  try {
    mkdirSync(dir, { recursive: true });
    // Write then rename, so a concurrent reader never sees half a file.
    const file = cacheFile(dir, key);
    // Worker threads share the process id: the thread's id keeps their files apart.
    const tmp = `${file}.${process.pid}.${threadId}.tmp`;
    writeFileSync(tmp, encodeEntry(p));
    renameSync(tmp, file);
    pruneCache(dir, file);
  } catch {
    // The cache is an optimisation: a read-only checkout still assembles.
  }
}

/** Keeps the directory within CACHE_MAX_ENTRIES and CACHE_MAX_BYTES, newest first; `keep` stays. */
export function pruneCache(dir: string, keep?: string): void {
  const names = readdirSync(dir);
  for (const n of names) if (OLD_ENTRY_RE.test(n)) rmSync(join(dir, n), { force: true });
  const entries = names
    .filter((n) => ENTRY_RE.test(n))
    .map((n) => {
      const path = join(dir, n);
      const st = statSync(path);
      return { path, size: st.size, mtime: st.mtimeMs };
    })
    .sort((a, b) => (a.path === keep ? -1 : b.path === keep ? 1 : b.mtime - a.mtime));
  let total = 0;
  entries.forEach((e, i) => {
    total += e.size;
    if (e.path !== keep && (i >= CACHE_MAX_ENTRIES || total > CACHE_MAX_BYTES)) rmSync(e.path, { force: true });
  });
}
