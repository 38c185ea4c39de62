// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A kallsyms-like table: name -> (address, size), and address -> `name+0xoff`.
 *
 * Symbols come in two kinds: a sorted list of KSymbol objects (hand-written
 * code, data, trampolines), and at most one compact block of generated
 * functions, as the linker laid them out (names, offsets and sizes in address
 * order). A block's KSymbol objects are only made when someone asks for one:
 * a kernel of 200,000 functions asks for few of them by name.
 */

export interface KSymbol {
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
}

/** Symbols laid out by a linker, in (address, name) order. */
export interface SymbolBlock {
  base: bigint;
  names: readonly string[];
  /** Offsets from base, ascending. */
  starts: readonly number[];
  sizes: readonly number[];
  /** name -> index; as many entries as names (no name twice). */
  index: ReadonlyMap<string, number>;
}

const before = (a: KSymbol, b: KSymbol): boolean => a.address < b.address || (a.address === b.address && a.name < b.name);

/** The table's order: by address, then by name. */
export const symbolOrder = (a: KSymbol, b: KSymbol): number => (before(a, b) ? -1 : before(b, a) ? 1 : 0);

/** A block whose entries are in the table's order, or the reason it is not one. */
function blockOrderError(b: SymbolBlock): string | undefined {
  if (b.index.size !== b.names.length) return 'a name appears twice';
  for (let i = 1; i < b.starts.length; i++) {
    const d = b.starts[i]! - b.starts[i - 1]!;
    if (d < 0 || (d === 0 && !(b.names[i - 1]! < b.names[i]!))) return 'not in address order';
  }
  return undefined;
}

export class SymbolTable {
  private readonly byName = new Map<string, KSymbol>();
  private sorted: KSymbol[] = [];
  private readonly block: SymbolBlock | undefined;
  /** Block entries replaced or removed since. */
  private readonly dead: Uint8Array;
  private deadCount = 0;
  private readonly made: (KSymbol | undefined)[] = [];
  /** Where the block's offsets stop being exact as numbers. */
  private readonly blockLimit: bigint;
  private merged: KSymbol[] | undefined;

  constructor(symbols: Iterable<KSymbol> = [], block?: SymbolBlock) {
    const list = [...symbols];
    for (const s of list) this.byName.set(s.name, s);
    // A linker hands its symbols over in address order: then there is nothing to sort.
    let inOrder = this.byName.size === list.length;
    for (let i = 1; inOrder && i < list.length; i++) inOrder = before(list[i - 1]!, list[i]!);
    if (inOrder) this.sorted = list;
    else this.resort();
    if (block && block.names.length > 0) {
      const bad = blockOrderError(block);
      if (bad) throw new Error(`symbol block: ${bad}`);
      this.block = block;
      for (const s of list) if (block.index.has(s.name)) throw new Error(`symbol ${s.name} is defined twice`);
    }
    this.dead = new Uint8Array(this.block?.names.length ?? 0);
    this.blockLimit = (this.block?.base ?? 0n) + (1n << 52n);
  }

  private resort(): void {
    this.sorted = [...this.byName.values()].sort(symbolOrder);
  }

  /** Block entry i as a KSymbol, made once. */
  private blockSymbol(i: number): KSymbol {
    let s = this.made[i];
    if (!s) {
      const b = this.block!;
      s = { name: b.names[i]!, address: b.base + BigInt(b.starts[i]!), size: b.sizes[i]! };
      this.made[i] = s;
    }
    return s;
  }

  private blockIndex(name: string): number | undefined {
    const i = this.block?.index.get(name);
    return i === undefined || this.dead[i] ? undefined : i;
  }

  /** Where `s` is or would go in the sorted order. */
  private position(s: KSymbol): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(this.sorted[mid]!, s)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private unlink(s: KSymbol): void {
    const i = this.position(s);
    if (this.sorted[i] === s) this.sorted.splice(i, 1);
    else this.sorted = this.sorted.filter((x) => x !== s);
  }

  private kill(name: string): void {
    const i = this.blockIndex(name);
    if (i !== undefined) {
      this.dead[i] = 1;
      this.deadCount++;
    }
  }

  /** Adds symbols (e.g. an allocated trampoline); replaces one of the same name. */
  add(...symbols: KSymbol[]): void {
    this.merged = undefined;
    for (const s of symbols) this.kill(s.name);
    if (symbols.length > 64) {
      for (const s of symbols) this.byName.set(s.name, s);
      this.resort();
      return;
    }
    for (const s of symbols) {
      const old = this.byName.get(s.name);
      if (old) this.unlink(old);
      this.byName.set(s.name, s);
      this.sorted.splice(this.position(s), 0, s);
    }
  }

  remove(name: string): void {
    this.merged = undefined;
    this.kill(name);
    const s = this.byName.get(name);
    if (!s) return;
    this.byName.delete(name);
    this.unlink(s);
  }

  get size(): number {
    return this.byName.size + (this.block?.names.length ?? 0) - this.deadCount;
  }

  get(name: string): KSymbol | undefined {
    const s = this.byName.get(name);
    if (s) return s;
    const i = this.blockIndex(name);
    return i === undefined ? undefined : this.blockSymbol(i);
  }

  private offsetsFrom: bigint | undefined;
  private blockDelta = 0;
  private readonly listOffsets = new Map<KSymbol, number>();

  /** `name`'s address minus `from`, as a number (for a linker's checks: no bigint per call). */
  offsetOf(name: string, from: bigint): number | undefined {
    if (this.offsetsFrom !== from) {
      this.offsetsFrom = from;
      this.blockDelta = this.block ? Number(BigInt.asIntN(64, this.block.base - from)) : 0;
      this.listOffsets.clear();
    }
    const i = this.blockIndex(name);
    if (i !== undefined) return this.blockDelta + this.block!.starts[i]!;
    const s = this.byName.get(name);
    if (!s) return undefined;
    let o = this.listOffsets.get(s);
    if (o === undefined) {
      o = Number(BigInt.asIntN(64, s.address - from));
      this.listOffsets.set(s, o);
    }
    return o;
  }

  /** The address of `name`; throws with the name when it is unknown. */
  addr(name: string): bigint {
    const s = this.get(name);
    if (!s) throw new Error(`unknown symbol ${name}`);
    return s.address;
  }

  /** Every symbol, by address then name. */
  all(): readonly KSymbol[] {
    if (!this.block) return this.sorted;
    if (!this.merged) {
      const out: KSymbol[] = [];
      for (let i = 0; i < this.block.names.length; i++) if (!this.dead[i]) out.push(this.blockSymbol(i));
      this.merged = [...this.sorted, ...out].sort(symbolOrder);
    }
    return this.merged;
  }

  /**
   * The last symbol at or before `address` in the table's order: from the
   * list, or block entry k, `o` bytes in (left unmade: format() needs only
   * its name). No bigint is made on the way but `address - base`: this runs
   * once per call site at boot.
   */
  private lastAtOrBefore(address: bigint): { list: KSymbol } | { k: number; o: number } | undefined {
    const a = this.sorted;
    let lo = 0;
    let hi = a.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid]!.address <= address) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const fromList = best < 0 ? undefined : a[best]!;
    const b = this.block;
    if (!b || address < b.base || address >= this.blockLimit) return fromList && { list: fromList };
    const o = Number(address - b.base);
    let l = 0;
    let h = b.starts.length - 1;
    let k = -1;
    while (l <= h) {
      const mid = (l + h) >> 1;
      if (b.starts[mid]! <= o) {
        k = mid;
        l = mid + 1;
      } else h = mid - 1;
    }
    while (k >= 0 && this.dead[k]) k--;
    if (k < 0) return fromList && { list: fromList };
    // The list's candidate wins only from inside the block's span (a trampoline, data).
    if (fromList && fromList.address >= b.base) {
      const at = b.base + BigInt(b.starts[k]!);
      if (fromList.address > at || (fromList.address === at && fromList.name > b.names[k]!)) return { list: fromList };
    }
    return { k, o: o - b.starts[k]! };
  }

  /** The symbol containing `address` (the last one starting at or before it, within its size). */
  lookup(address: bigint): { symbol: KSymbol; offset: number } | undefined {
    // Several labels may share an address (ftrace_caller_end == ftrace_return): prefer the
    // last one in the sorted order that still contains the address.
    const hit = this.lastAtOrBefore(address);
    if (!hit) return undefined;
    const s = 'list' in hit ? hit.list : this.blockSymbol(hit.k);
    const offset = Number(address - s.address);
    if (offset >= Math.max(s.size, 1)) return undefined;
    return { symbol: s, offset };
  }

  /** `%pS`-style: `name+0x1c/0x40`; `%ps`-style with short=true: `name`. */
  format(address: bigint, opts: { short?: boolean; withSize?: boolean } = {}): string | undefined {
    if (opts.short) {
      const last = this.lastAtOrBefore(address);
      if (last && 'k' in last) {
        const b = this.block!;
        return last.o < Math.max(b.sizes[last.k]!, 1) ? b.names[last.k] : undefined;
      }
    }
    const hit = this.lookup(address);
    if (!hit) return undefined;
    if (opts.short) return hit.symbol.name;
    const size = opts.withSize ? `/0x${hit.symbol.size.toString(16)}` : '';
    return `${hit.symbol.name}+0x${hit.offset.toString(16)}${size}`;
  }
}
