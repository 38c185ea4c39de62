// SPDX-License-Identifier: GPL-2.0-or-later
/* A kallsyms-like table: name -> (address, size), and address -> `name+0xoff`. */

export interface KSymbol {
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
}

export class SymbolTable {
  private readonly byName = new Map<string, KSymbol>();
  private sorted: KSymbol[] = [];

  constructor(symbols: Iterable<KSymbol> = []) {
    for (const s of symbols) this.byName.set(s.name, s);
    this.resort();
  }

  private resort(): void {
    this.sorted = [...this.byName.values()].sort((a, b) =>
      a.address < b.address ? -1 : a.address > b.address ? 1 : a.name < b.name ? -1 : 1,
    );
  }

  /** Adds symbols (e.g. an allocated trampoline); replaces one of the same name. */
  add(...symbols: KSymbol[]): void {
    for (const s of symbols) this.byName.set(s.name, s);
    this.resort();
  }

  remove(name: string): void {
    if (this.byName.delete(name)) this.resort();
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
