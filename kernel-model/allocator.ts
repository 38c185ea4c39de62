// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A first-fit range allocator over guest addresses: module_alloc()'s module
 * space (page granular) and kmalloc()'s direct map (16-byte granular) are two
 * instances. First fit returns the lowest free range, so memory freed by one
 * owner is what the next allocation of that size gets back.
 */

export class RangeAllocator {
  /** Free ranges [start, end), sorted and coalesced. */
  private free: { start: bigint; end: bigint }[];
  private readonly used = new Map<bigint, bigint>(); // start -> size
  private inUse = 0n;

  constructor(
    readonly name: string,
    readonly base: bigint,
    readonly size: number,
    readonly granule: number,
  ) {
    this.free = [{ start: base, end: base + BigInt(size) }];
  }

  alloc(size: number): bigint | undefined {
    const g = BigInt(this.granule);
    const want = ((BigInt(Math.max(size, 1)) + g - 1n) / g) * g;
    for (let i = 0; i < this.free.length; i++) {
      const r = this.free[i]!;
      if (r.end - r.start < want) continue;
      const addr = r.start;
      r.start += want;
      if (r.start === r.end) this.free.splice(i, 1);
      this.used.set(addr, want);
      this.inUse += want;
      return addr;
    }
    return undefined;
  }

  /** The size of an allocation starting at addr, or undefined. */
  sizeOf(addr: bigint): number | undefined {
    const n = this.used.get(addr);
    return n === undefined ? undefined : Number(n);
  }

  /** Frees an allocation; freeing what was not allocated is a bug in the caller. */
  release(addr: bigint): void {
    const size = this.used.get(addr);
    if (size === undefined) throw new Error(`${this.name}: free of ${addr.toString(16)}, which is not allocated`);
    this.used.delete(addr);
    this.inUse -= size;
    const end = addr + size;
    let i = this.free.findIndex((r) => r.start > addr);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, { start: addr, end });
    // Coalesce with the neighbours.
    const next = this.free[i + 1];
    if (next && next.start === end) {
      this.free[i]!.end = next.end;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.end === addr) {
      prev.end = this.free[i]!.end;
      this.free.splice(i, 1);
    }
  }

  get bytesInUse(): number {
    return Number(this.inUse);
  }
}

/** Static kernel data: laid out once at boot, each object named like a C global. */
export class DataLayout {
  private next: bigint;
  readonly symbols = new Map<string, bigint>();
  readonly sizes = new Map<string, number>();

  constructor(readonly base: bigint) {
    this.next = base;
  }

  place(name: string, size: number, align = 8): bigint {
    if (this.symbols.has(name)) throw new Error(`kernel data ${name} is defined twice`);
    const a = BigInt(align);
    this.next = ((this.next + a - 1n) / a) * a;
    const addr = this.next;
    this.next += BigInt(size);
    this.symbols.set(name, addr);
    this.sizes.set(name, size);
    return addr;
  }

  get end(): bigint {
    return this.next;
  }
}
