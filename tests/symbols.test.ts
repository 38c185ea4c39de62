// SPDX-License-Identifier: GPL-2.0-or-later
import fc from 'fast-check';
import { SymbolTable, symbolOrder, type KSymbol, type SymbolBlock } from '../asm/symbols.js';

const BASE = 0xffffffff81000000n;

/** What the table must hold: the last symbol of each name, sorted by address then name. */
function model(m: Map<string, KSymbol>): KSymbol[] {
  return [...m.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'p', 'q', 'r', 's', 't', 'u'];
const sym = fc.record({ name: fc.constantFrom(...NAMES), address: fc.bigInt(BASE, BASE + 64n), size: fc.integer({ min: 0, max: 8 }) });
const op = fc.oneof(
  fc.record({ add: fc.array(sym, { maxLength: 4 }) }),
  fc.record({ remove: fc.constantFrom(...NAMES) }),
);

/** A linker's block from symbols whose names start with p..u (none of the list's names). */
function blockOf(symbols: KSymbol[], base: bigint): SymbolBlock | undefined {
  const uniq = [...new Map(symbols.filter((s) => s.name >= 'p' && s.address >= base).map((s) => [s.name, s])).values()].sort(symbolOrder);
  if (uniq.length === 0) return undefined;
  return {
    base,
    names: uniq.map((s) => s.name),
    starts: uniq.map((s) => Number(s.address - base)),
    sizes: uniq.map((s) => s.size),
    index: new Map(uniq.map((s, i) => [s.name, i])),
  };
}

describe('SymbolTable', () => {
  test('built in or out of order, with or without a linker block, then added to and removed from: it stays sorted and looks up like a sorted list', () => {
    fc.assert(
      fc.property(fc.array(sym, { maxLength: 12 }), fc.boolean(), fc.array(sym, { maxLength: 8 }), fc.bigInt(BASE, BASE + 16n), fc.array(op, { maxLength: 10 }), (initial, presort, generated, blockBase, ops) => {
        const m = new Map<string, KSymbol>();
        const listed = initial.filter((s) => s.name < 'p');
        const start = presort ? model(new Map(listed.map((s) => [s.name, s]))) : listed;
        for (const s of start) m.set(s.name, s);
        const block = blockOf(generated, blockBase);
        if (block) block.names.forEach((name, i) => m.set(name, { name, address: blockBase + BigInt(block.starts[i]!), size: block.sizes[i]! }));
        const t = new SymbolTable(start, block);
        for (const o of ops) {
          if ('add' in o) {
            t.add(...o.add);
            for (const s of o.add) m.set(s.name, s);
          } else {
            t.remove(o.remove);
            m.delete(o.remove);
          }
        }
        const want = model(m);
        // One comparison per run: jest's expect costs more than the table itself, and a
        // single toEqual of everything observed names each difference just as well.
        const got = { all: t.all(), size: t.size, get: {} as Record<string, unknown>, offsetOf: {} as Record<string, unknown>, lookup: [] as unknown[] };
        const exp = { all: want, size: want.length, get: {} as Record<string, unknown>, offsetOf: {} as Record<string, unknown>, lookup: [] as unknown[] };
        for (const name of NAMES) {
          got.get[name] = t.get(name);
          exp.get[name] = m.get(name);
          got.offsetOf[name] = t.offsetOf(name, BASE);
          exp.offsetOf[name] = m.has(name) ? Number(m.get(name)!.address - BASE) : undefined;
        }
        for (let a = BASE - 1n; a <= BASE + 72n; a += 3n) {
          const hits = want.filter((s) => s.address <= a);
          const last = hits[hits.length - 1];
          const expected = last && Number(a - last.address) < Math.max(last.size, 1) ? last.name : undefined;
          got.lookup.push([a, t.lookup(a)?.symbol.name, t.format(a, { short: true })]);
          exp.lookup.push([a, expected, expected]);
        }
        expect(got).toEqual(exp);
      }),
      { numRuns: 300, seed: 14 },
    );
  });
});
