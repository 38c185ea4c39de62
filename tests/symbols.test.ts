// SPDX-License-Identifier: GPL-2.0-or-later
import fc from 'fast-check';
import { SymbolTable, type KSymbol } from '../asm/symbols.js';

const BASE = 0xffffffff81000000n;

/** What the table must hold: the last symbol of each name, sorted by address then name. */
function model(m: Map<string, KSymbol>): KSymbol[] {
  return [...m.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const sym = fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), address: fc.bigInt(BASE, BASE + 64n), size: fc.integer({ min: 0, max: 8 }) });
const op = fc.oneof(
  fc.record({ add: fc.array(sym, { maxLength: 4 }) }),
  fc.record({ remove: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h') }),
);

describe('SymbolTable', () => {
  test('built in or out of order, then added to and removed from, it stays sorted and looks up like a sorted list', () => {
    fc.assert(
      fc.property(fc.array(sym, { maxLength: 12 }), fc.boolean(), fc.array(op, { maxLength: 10 }), (initial, presort, ops) => {
        const m = new Map<string, KSymbol>();
        const start = presort ? model(new Map(initial.map((s) => [s.name, s]))) : initial;
        for (const s of start) m.set(s.name, s);
        const t = new SymbolTable(start);
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
        expect(t.all()).toEqual(want);
        for (let a = BASE - 1n; a <= BASE + 72n; a += 3n) {
          const hits = want.filter((s) => s.address <= a);
          const last = hits[hits.length - 1];
          const expected = last && Number(a - last.address) < Math.max(last.size, 1) ? last.name : undefined;
          expect(t.lookup(a)?.symbol.name).toBe(expected);
        }
      }),
      { numRuns: 300, seed: 14 },
    );
  });
});
