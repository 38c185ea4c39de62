// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * x86-64 4-level page tables (PML4, PDPT, PD, PT) in guest physical memory:
 * the kernel's init_mm page tables, which every CPU's CR3 points at. Whole
 * 2 MiB stretches of a region (the text, module space, the direct map) are
 * mapped with 2 MiB pages, as the kernel maps them, and the rest with 4 KiB
 * pages, so permissions stay exact per region (text read-only, data NX) and
 * the unmapped guard pages between stacks stay unmapped. Building 4 KiB
 * entries for 100 MiB per boot cost ~70 ms per kernel. Intermediate entries
 * allow everything: as in Linux, the leaf entry decides.
 *
 * The tables live in one host buffer (a pool of 4 KiB table pages) that the
 * engines map at PAGE_TABLES_PHYS, so the CPU's own walk (Unicorn 2.0) and
 * walk() below (Unicorn 2.1's TLB-fill hook, when a fault is replayed) read the same entries.
 */
import type { Perms } from './memory.js';

export const PTE_PRESENT = 1n;
export const PTE_RW = 1n << 1n;
export const PTE_USER = 1n << 2n;
export const PTE_PSE = 1n << 7n; // in a PD entry: a 2 MiB page
export const PTE_NX = 1n << 63n;
const HUGE = 0x200000n;
const ADDR_MASK = 0x000ffffffffff000n;
const TABLE_FLAGS = PTE_PRESENT | PTE_RW | PTE_USER;

/** Where the page-table pool sits in guest physical memory (below every region's home). */
export const PAGE_TABLES_PHYS = 0x100000n;
/** Table pages in the pool: each PT maps 2 MiB, so 1024 pages cover ~2 GiB of mappings. */
const POOL_PAGES = 1024;
const PAGE = 0x1000n;

export interface Translation {
  phys: bigint;
  perms: Perms;
}

function index(vaddr: bigint, level: number): number {
  return Number((vaddr >> BigInt(12 + 9 * level)) & 511n);
}

export class PageTables {
  /** The pool's host memory: table page i is at PAGE_TABLES_PHYS + i * 4 KiB. */
  readonly buffer = Buffer.alloc(POOL_PAGES * 0x1000);
  private used = 1; // page 0 is the PML4
  /** CR3: the physical address of the PML4. */
  readonly cr3 = PAGE_TABLES_PHYS;

  /**
   * `nx`: whether leaf entries of non-executable pages carry the NX bit.
   * Unicorn 2.0.1's CPU model has no NX (EFER.NXE does not stick, and NX is
   * then a reserved bit that faults every access): there, fetch protection
   * comes from Unicorn's own region permissions instead.
   */
  constructor(private readonly nx: boolean) {}

  get size(): number {
    return this.buffer.length;
  }

  private entry(tablePhys: bigint, i: number): bigint {
    return this.buffer.readBigUInt64LE(Number(tablePhys - PAGE_TABLES_PHYS) + i * 8);
  }

  private setEntry(tablePhys: bigint, i: number, v: bigint): void {
    this.buffer.writeBigUInt64LE(v, Number(tablePhys - PAGE_TABLES_PHYS) + i * 8);
  }

  /** The table at `depth` (1: the PD, 0: the PT) on vaddr's walk, created on the way when `create`. */
  private table(vaddr: bigint, create: boolean, depth = 0): bigint | undefined {
    let table = this.cr3;
    for (let level = 3; level > depth; level--) {
      const i = index(vaddr, level);
      let e = this.entry(table, i);
      if (!(e & PTE_PRESENT)) {
        if (!create) return undefined;
        if (this.used >= POOL_PAGES) throw new Error(`page tables: all ${POOL_PAGES} table pages are in use`);
        const page = PAGE_TABLES_PHYS + BigInt(this.used++) * PAGE;
        e = page | TABLE_FLAGS;
        this.setEntry(table, i, e);
      }
      if (e & PTE_PSE) return undefined; // inside a 2 MiB page: no table below
      table = e & ADDR_MASK;
    }
    return table;
  }

  /** The entry mapping vaddr: [table, index] of a 2 MiB PD entry or of a PT entry. */
  private leaf(vaddr: bigint): [bigint, number] | undefined {
    const pd = this.table(vaddr, false, 1);
    if (pd === undefined) return undefined;
    const e = this.entry(pd, index(vaddr, 1));
    if (e & PTE_PSE) return [pd, index(vaddr, 1)];
    const pt = this.table(vaddr, false, 0);
    return pt === undefined ? undefined : [pt, index(vaddr, 0)];
  }

  private leafFlags(vaddr: bigint, perms: Perms): bigint {
    let f = PTE_PRESENT;
    if (perms.write) f |= PTE_RW;
    if (!perms.exec && this.nx) f |= PTE_NX;
    if (vaddr < 0x800000000000n) f |= PTE_USER; // the lower half is user space
    return f;
  }

  /** Maps [vaddr, vaddr+size) onto [phys, phys+size), with 2 MiB pages where both are aligned. */
  map(vaddr: bigint, phys: bigint, size: number, perms: Perms): void {
    const end = BigInt(size);
    const flags = this.leafFlags(vaddr, perms);
    const sameAlignment = (vaddr - phys) % HUGE === 0n;
    for (let off = 0n; off < end; ) {
      const v = vaddr + off;
      if (sameAlignment && v % HUGE === 0n && off + HUGE <= end) {
        this.setEntry(this.table(v, true, 1)!, index(v, 1), (phys + off) | flags | PTE_PSE);
        off += HUGE;
        continue;
      }
      // 4 KiB pages up to the next 2 MiB boundary (or the end), in one PT.
      const pt = this.table(v, true, 0)!;
      const stop = off + (HUGE - (v % HUGE)) < end ? off + (HUGE - (v % HUGE)) : end;
      let i = index(v, 0);
      let pa = phys + off;
      for (; off < stop; off += PAGE, pa += PAGE) this.setEntry(pt, i++, pa | flags);
    }
  }

  /** Calls fn with each leaf entry (2 MiB or 4 KiB) that maps part of [vaddr, vaddr+size). */
  private eachLeaf(vaddr: bigint, size: number, fn: (table: bigint, i: number) => void): void {
    const end = vaddr + BigInt(size);
    for (let v = vaddr; v < end; ) {
      const l = this.leaf(v);
      if (l && l[0] !== undefined && (this.entry(l[0], l[1]) & PTE_PSE)) {
        fn(l[0], l[1]);
        v = (v & ~(HUGE - 1n)) + HUGE;
      } else {
        if (l) fn(l[0], l[1]);
        v += PAGE;
      }
    }
  }

  unmap(vaddr: bigint, size: number): void {
    this.eachLeaf(vaddr, size, (t, i) => this.setEntry(t, i, 0n));
  }

  protect(vaddr: bigint, size: number, perms: Perms): void {
    const flags = this.leafFlags(vaddr, perms);
    this.eachLeaf(vaddr, size, (t, i) => {
      const e = this.entry(t, i);
      if (e & PTE_PRESENT) this.setEntry(t, i, (e & ADDR_MASK) | flags | (e & PTE_PSE));
    });
  }

  /** The page walk an x86-64 MMU does for a supervisor access: undefined when not present. */
  walk(vaddr: bigint): Translation | undefined {
    // Non-canonical addresses have no translation (#GP on hardware).
    const top = vaddr >> 47n;
    if (top !== 0n && top !== 0x1ffffn) return undefined;
    let table = this.cr3;
    for (let level = 3; level >= 0; level--) {
      const e = this.entry(table, index(vaddr, level));
      if (!(e & PTE_PRESENT)) return undefined;
      const huge = level === 1 && (e & PTE_PSE) !== 0n;
      if (level === 0 || huge) {
        const offsetMask = huge ? HUGE - 1n : PAGE - 1n;
        return {
          phys: (e & ADDR_MASK & ~offsetMask) | (vaddr & offsetMask),
          perms: { read: true, write: (e & PTE_RW) !== 0n, exec: (e & PTE_NX) === 0n },
        };
      }
      table = e & ADDR_MASK;
    }
    return undefined;
  }
}
