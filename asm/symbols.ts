// SPDX-License-Identifier: GPL-2.0-or-later
/* A kallsyms-like table: name -> (address, size), and address -> `name+0xoff`. */

export interface KSymbol {
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
}

const before = (a: KSymbol, b: KSymbol): boolean => a.address < b.address || (a.address === b.address && a.name < b.name);

/** The table's order: by address, then by name. */
export const symbolOrder = (a: KSymbol, b: KSymbol): number => (before(a, b) ? -1 : before(b, a) ? 1 : 0);

export class SymbolTable {
  private readonly byName = new Map<string, KSymbol>();
  private sorted: KSymbol[] = [];

  constructor(symbols: Iterable<KSymbol> = []) {
    const list = [...symbols];
    for (const s of list) this.byName.set(s.name, s);
    // A linker hands its symbols over in address order: then there is nothing to sort.
    let inOrder = this.byName.size === list.length;
    for (let i = 1; inOrder && i < list.length; i++) inOrder = before(list[i - 1]!, list[i]!);
    if (inOrder) this.sorted = list;
    else this.resort();
  }

  private resort(): void {
    this.sorted = [...this.byName.values()].sort(symbolOrder);
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

  /** Adds symbols (e.g. an allocated trampoline); replaces one of the same name. */
  add(...symbols: KSymbol[]): void {
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
    const s = this.byName.get(name);
    if (!s) return;
    this.byName.delete(name);
    this.unlink(s);
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): KSymbol | undefined {
    return this.byName.get(name);
  }

  /** The address of `name`; throws with the name when it is unknown. */
  addr(name: string): bigint {
    const s = this.byName.get(name);
    if (!s) throw new Error(`unknown symbol ${name}`);
    return s.address;
  }

  all(): readonly KSymbol[] {
    return this.sorted;
  }

  /** The symbol containing `address` (the last one starting at or before it, within its size). */
  lookup(address: bigint): { symbol: KSymbol; offset: number } | undefined {
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
    if (best < 0) return undefined;
    // Several labels may share an address (ftrace_caller_end == ftrace_return): prefer the
    // last one in the sorted order that still contains the address.
    const s = a[best]!;
    const offset = Number(address - s.address);
    if (offset >= Math.max(s.size, 1)) return undefined;
    return { symbol: s, offset };
  }

  /** `%pS`-style: `name+0x1c/0x40`; `%ps`-style with short=true: `name`. */
  format(address: bigint, opts: { short?: boolean; withSize?: boolean } = {}): string | undefined {
    const hit = this.lookup(address);
    if (!hit) return undefined;
    if (opts.short) return hit.symbol.name;
    const size = opts.withSize ? `/0x${hit.symbol.size.toString(16)}` : '';
    return `${hit.symbol.name}+0x${hit.offset.toString(16)}${size}`;
  }
}
