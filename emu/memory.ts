// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Guest memory as named regions of the kernel's virtual address space, each
 * backed by a host buffer that is its home in guest physical memory, and
 * mapped at its virtual address by the page tables (paging.ts) that every
 * CPU's CR3 points at.
 *
 * Every engine maps the same buffers with uc_mem_map_ptr, so several emulated
 * CPUs share one memory, and the host reads and writes guest memory by
 * virtual address without a call into Unicorn. The price is the one real hardware pays too: a host write
 * to code is not seen by an engine that already translated it until that
 * engine's code cache is invalidated (Engine.invalidate).
 */
import { hex } from './hex.js';
import { PageTables } from './paging.js';
import { UC_AT_LEAST_2_1, UC_PROT } from './unicorn.js';

export type Perms = { read: boolean; write: boolean; exec: boolean };
export const RX: Perms = { read: true, write: false, exec: true };
export const RW: Perms = { read: true, write: true, exec: false };
export const RWX: Perms = { read: true, write: true, exec: true };

export function permsToUc(p: Perms): number {
  return (p.read ? UC_PROT.READ : 0) | (p.write ? UC_PROT.WRITE : 0) | (p.exec ? UC_PROT.EXEC : 0);
}

export function permsToString(p: Perms): string {
  return `${p.read ? 'r' : '-'}${p.write ? 'w' : '-'}${p.exec ? 'x' : '-'}`;
}

export const PAGE_SIZE = 0x1000;

export interface Region {
  readonly name: string;
  readonly base: bigint;
  readonly size: number;
  perms: Perms;
  readonly buffer: Buffer;
  /** Where the buffer sits in guest physical memory. */
  readonly phys: bigint;
}

/** Regions' physical homes start above the page tables, 2 MiB aligned. */
const PHYS_START = 0x1000000n;

/** Anything that must follow the memory map: the engines that share it. */
export interface MemoryListener {
  onMap(region: Region): void;
  onUnmap(region: Region): void;
  onProtect(region: Region): void;
}

export class MemoryAccessError extends Error {
  constructor(
    readonly address: bigint,
    readonly length: number,
    readonly access: 'read' | 'write',
  ) {
    super(`host ${access} of ${length} byte(s) at ${hex(address)} is outside every mapped region`);
    this.name = 'MemoryAccessError';
  }
}

export class GuestMemory {
  private regions: Region[] = [];
  private listeners = new Set<MemoryListener>();
  /** The page tables every CPU's CR3 points at (NX only where the CPU model has it). */
  readonly pageTables = new PageTables(UC_AT_LEAST_2_1);
  /** Physical memory is handed out upwards and never reused: there is plenty of it. */
  private nextPhys = PHYS_START;

  map(name: string, base: bigint, size: number, perms: Perms): Region {
    if (base % BigInt(PAGE_SIZE) !== 0n || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new Error(`region ${name}: base ${hex(base)} and size ${size} must be page aligned`);
    }
    const end = base + BigInt(size);
    for (const r of this.regions) {
      if (base < r.base + BigInt(r.size) && r.base < end) {
        throw new Error(`region ${name} [${hex(base)}, ${hex(end)}) overlaps ${r.name}`);
      }
    }
    if (this.regions.some((r) => r.name === name)) throw new Error(`region ${name} is already mapped`);
    // 2 MiB aligned homes, so a region could be mapped with large pages too.
    const phys = this.nextPhys;
    this.nextPhys += (BigInt(size) + 0x1fffffn) & ~0x1fffffn;
    const region: Region = { name, base, size, perms, buffer: Buffer.alloc(size), phys };
    this.pageTables.map(base, phys, size, perms);
    this.regions.push(region);
    this.regions.sort((a, b) => (a.base < b.base ? -1 : 1));
    for (const l of this.listeners) l.onMap(region);
    return region;
  }

  unmap(name: string): void {
    const region = this.region(name);
    this.regions = this.regions.filter((r) => r !== region);
    this.pageTables.unmap(region.base, region.size);
    if (this.lastHit === region) this.lastHit = undefined;
    for (const l of this.listeners) l.onUnmap(region);
  }

  protect(name: string, perms: Perms): void {
    const region = this.region(name);
    region.perms = perms;
    this.pageTables.protect(region.base, region.size, perms);
    for (const l of this.listeners) l.onProtect(region);
  }

  region(name: string): Region {
    const r = this.regions.find((x) => x.name === name);
    if (!r) throw new Error(`no region named ${name}`);
    return r;
  }

  allRegions(): readonly Region[] {
    return this.regions;
  }

  /** The region holding [address, address+length), or undefined. */
  find(address: bigint, length = 1): Region | undefined {
    // Accesses come in runs to one region: try the last one first.
    const last = this.lastHit;
    if (last && address >= last.base && Number(address - last.base) + length <= last.size) return last;
    for (const r of this.regions) {
      if (address >= r.base && address - r.base < BigInt(r.size) && Number(address - r.base) + length <= r.size) {
        this.lastHit = r;
        return r;
      }
    }
    return undefined;
  }

  private lastHit: Region | undefined;

  addListener(l: MemoryListener): void {
    this.listeners.add(l);
    for (const r of this.regions) l.onMap(r);
  }

  removeListener(l: MemoryListener): void {
    this.listeners.delete(l);
  }

  /**
   * The host buffer and offset behind [address, address+length), for a
   * caller that reads one guest word many times (struct dyn_ftrace flags):
   * valid until the region is unmapped.
   */
  locate(address: bigint, length: number, access: 'read' | 'write'): [Buffer, number] {
    const r = this.find(address, length);
    if (!r) throw new MemoryAccessError(address, length, access);
    return [r.buffer, Number(address - r.base)];
  }

  read(address: bigint, length: number): Uint8Array {
    const [buf, off] = this.locate(address, length, 'read');
    return Uint8Array.prototype.slice.call(buf, off, off + length);
  }

  /** Copies `length` bytes at `address` into `dest` at `at`, without allocating. */
  readInto(address: bigint, length: number, dest: Uint8Array, at: number): void {
    const [buf, off] = this.locate(address, length, 'read');
    buf.copy(dest, at, off, off + length);
  }

  /** Whether [address, address+bytes.length) holds `bytes`, without copying them out. */
  equals(address: bigint, bytes: Uint8Array): boolean {
    const [buf, off] = this.locate(address, bytes.length, 'read');
    for (let i = 0; i < bytes.length; i++) if (buf[off + i] !== bytes[i]) return false;
    return true;
  }

  /** A host write: the caller invalidates code caches if these bytes are code. */
  write(address: bigint, bytes: Uint8Array): void {
    const [buf, off] = this.locate(address, bytes.length, 'write');
    buf.set(bytes, off);
  }

  fill(address: bigint, length: number, value: number): void {
    const [buf, off] = this.locate(address, length, 'write');
    buf.fill(value, off, off + length);
  }

  /** A little-endian unsigned integer of `size` bytes. */
  readUint(a: bigint, size: 1 | 2 | 4): number {
    const [b, o] = this.locate(a, size, 'read');
    return b.readUIntLE(o, size);
  }
  readU8 = (a: bigint): number => this.readUint(a, 1);
  readU16 = (a: bigint): number => this.readUint(a, 2);
  readU32 = (a: bigint): number => this.readUint(a, 4);
  readU64(a: bigint): bigint {
    const [b, o] = this.locate(a, 8, 'read');
    return b.readBigUInt64LE(o);
  }
  writeUint(a: bigint, v: number, size: 1 | 2 | 4): void {
    const [b, o] = this.locate(a, size, 'write');
    b.writeUIntLE(v >>> 0, o, size);
  }
  writeU32 = (a: bigint, v: number): void => this.writeUint(a, v, 4);
  writeU64(a: bigint, v: bigint): void {
    const [b, o] = this.locate(a, 8, 'write');
    b.writeBigUInt64LE(BigInt.asUintN(64, v), o);
  }
}
