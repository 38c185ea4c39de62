// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * x86-64 4-level page tables (PML4, PDPT, PD, PT; 4 KiB pages) in guest
 * physical memory: the kernel's init_mm page tables, which every CPU's CR3
 * points at. Pages are 4 KiB so that permissions are exact per page (text
 * read-only, data NX) and the unmapped guard pages between stacks stay
 * unmapped. Intermediate entries allow everything: as in Linux, the leaf
 * entry decides.
 *
 * The tables live in one host buffer (a pool of 4 KiB table pages) that the
 * engines map at PAGE_TABLES_PHYS, so the CPU's own walk (Unicorn 2.0) and
 * walk() below (Unicorn 2.1's TLB-fill hook) read the same entries.
 */
import type { Perms } from './memory.js';

export const PTE_PRESENT = 1n;
export const PTE_RW = 1n << 1n;
export const PTE_USER = 1n << 2n;
export const PTE_NX = 1n << 63n;
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

  /** The PT holding vaddr's leaf entry, created on the way when `create`. */
  private leafTable(vaddr: bigint, create: boolean): bigint | undefined {
    let table = this.cr3;
    for (let level = 3; level >= 1; level--) {
      const i = index(vaddr, level);
      let e = this.entry(table, i);
      if (!(e & PTE_PRESENT)) {
        if (!create) return undefined;
        if (this.used >= POOL_PAGES) throw new Error(`page tables: all ${POOL_PAGES} table pages are in use`);
        const page = PAGE_TABLES_PHYS + BigInt(this.used++) * PAGE;
        e = page | TABLE_FLAGS;
        this.setEntry(table, i, e);
      }
      table = e & ADDR_MASK;
    }
    return table;
  }

  private leafFlags(vaddr: bigint, perms: Perms): bigint {
    let f = PTE_PRESENT;
    if (perms.write) f |= PTE_RW;
    if (!perms.exec && this.nx) f |= PTE_NX;
    if (vaddr < 0x800000000000n) f |= PTE_USER; // the lower half is user space
    return f;
  }

  /** Maps [vaddr, vaddr+size) onto [phys, phys+size). */
  map(vaddr: bigint, phys: bigint, size: number, perms: Perms): void {
    for (let off = 0n; off < BigInt(size); off += PAGE) {
      const v = vaddr + off;
      this.setEntry(this.leafTable(v, true)!, index(v, 0), (phys + off) | this.leafFlags(v, perms));
    }
  }

  unmap(vaddr: bigint, size: number): void {
    for (let off = 0n; off < BigInt(size); off += PAGE) {
      const pt = this.leafTable(vaddr + off, false);
      if (pt !== undefined) this.setEntry(pt, index(vaddr + off, 0), 0n);
    }
  }

  protect(vaddr: bigint, size: number, perms: Perms): void {
    for (let off = 0n; off < BigInt(size); off += PAGE) {
      const v = vaddr + off;
      const pt = this.leafTable(v, false);
      if (pt === undefined) continue;
      const e = this.entry(pt, index(v, 0));
      if (e & PTE_PRESENT) this.setEntry(pt, index(v, 0), (e & ADDR_MASK) | this.leafFlags(v, perms));
    }
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
      if (level === 0) {
        return {
          phys: (e & ADDR_MASK) | (vaddr & (PAGE - 1n)),
          perms: { read: true, write: (e & PTE_RW) !== 0n, exec: (e & PTE_NX) === 0n },
        };
      }
      table = e & ADDR_MASK;
    }
    return undefined;
  }
}
