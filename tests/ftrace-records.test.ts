// SPDX-License-Identifier: GPL-2.0-or-later
/* struct dyn_ftrace records: where they live in guest memory, how they are found, and what the kernel says when they are wrong. */
import { GuestMemory, RW } from '../emu/index.js';
import { DYN_FTRACE, FTRACE_FL } from '../kernel-model/abi.js';
import { DynFtraceTable, firstInRange, recFlags } from '../kernel-model/ftrace/records.js';
import { withKernel } from './helpers.js';

const BASE = 0xffff888000001000n;

/* A page of records between two pages of poison, so a record written out of
 * place shows. */
function table(sites: bigint[]): { mem: GuestMemory; t: DynFtraceTable } {
  const mem = new GuestMemory();
  mem.map('records', BASE - 0x1000n, 0x3000, RW);
  mem.fill(BASE - 0x1000n, 0x3000, 0xee);
  return { mem, t: new DynFtraceTable(mem, BASE, sites) };
}

describe('struct dyn_ftrace records in guest memory', () => {
  const sites = [0xffffffff81000300n, 0xffffffff81000100n, 0xffffffff81000200n];

  test('ftrace_process_locs sorts the call sites and writes each record in place, flags zeroed', () => {
    const { mem, t } = table(sites);
    expect(t.all().map((r) => r.ip)).toEqual([0xffffffff81000100n, 0xffffffff81000200n, 0xffffffff81000300n]);
    t.all().forEach((r, i) => {
      expect(r.index).toBe(i);
      expect(r.addr).toBe(BASE + BigInt(i * DYN_FTRACE.SIZE));
      expect(mem.readU64(r.addr + BigInt(DYN_FTRACE.IP))).toBe(r.ip);
      expect(mem.readU64(r.addr + BigInt(DYN_FTRACE.FLAGS))).toBe(0n);
    });
    expect(t.at(1)).toBe(t.all()[1]);
    expect(t.length).toBe(3);
    // Nothing outside the three records was touched.
    expect(mem.readU64(BASE - 8n)).toBe(0xeeeeeeeeeeeeeeeen);
    expect(mem.readU64(BASE + BigInt(3 * DYN_FTRACE.SIZE))).toBe(0xeeeeeeeeeeeeeeeen);
  });

  test("a record's flags are the u32 at its FLAGS offset in the guest, top bit included", () => {
    const { mem, t } = table(sites);
    const r = t.at(1);
    r.flags = recFlags.with(2, FTRACE_FL.ENABLED);
    expect(mem.readU32(r.addr + BigInt(DYN_FTRACE.FLAGS))).toBe(0x80000002);
    expect(r.flags).toBe(0x80000002);
    expect(r.count).toBe(2);
    expect(r.has(FTRACE_FL.ENABLED)).toBe(true);
    expect(r.has(FTRACE_FL.REGS)).toBe(false);
    mem.writeU32(r.addr + BigInt(DYN_FTRACE.FLAGS), 1);
    expect(r.flags).toBe(1);
    // Its neighbours keep their own words.
    expect(t.at(0).flags).toBe(0);
    expect(t.at(2).flags).toBe(0);
    expect(recFlags.without(0xc0000001, FTRACE_FL.ENABLED)).toBe(0x40000001);
    expect(recFlags.bits(0xc0000001, FTRACE_FL.ENABLED)).toBe(0x80000000);
  });

  test('ftrace_location finds call sites only; ftrace_location_range the first site in [start, end)', () => {
    const { t } = table(sites);
    for (const r of t.all()) expect(t.lookup(r.ip)).toBe(r);
    expect(t.lookup(0xffffffff81000101n)).toBeUndefined();
    expect(t.lookup(0xffffffff810000ffn)).toBeUndefined();
    expect(t.lookup(0xffffffff81000301n)).toBeUndefined();
    expect(t.lookupRange(0xffffffff81000101n, 0xffffffff81000400n)?.ip).toBe(0xffffffff81000200n);
    // The end is exclusive.
    expect(t.lookupRange(0xffffffff81000101n, 0xffffffff81000200n)).toBeUndefined();
    expect(firstInRange([], 0n, 10n)).toBe(-1);
    expect(firstInRange([5n], 5n, 6n)).toBe(0);
    expect(firstInRange([5n], 6n, 60n)).toBe(-1);
    expect(firstInRange([1n, 2n, 3n, 4n, 5n, 6n, 7n], 4n, 5n)).toBe(3);
    expect(firstInRange([1n, 2n, 3n, 4n, 5n, 6n, 7n], 0n, 100n)).toBe(0);
  });
});

/*
 * Records whose flags were changed behind ftrace's back: the kernel's
 * WARN_ONs fire, with the record named, and ftrace carries on.
 */
describe('corrupted dyn_ftrace records', () => {
  test('a count that would go below zero is warned about and left at zero', async () => {
    await withKernel({ functions: 4 }, ({ kernel, ftrace }) => {
      const o = ftrace.createOps({ name: 'o', callback: 'counter' });
      expect(ftrace.ftrace_set_filter(o, ['vfs_read'])).toEqual({ ok: true });
      expect(ftrace.register_ftrace_function(o)).toEqual({ ok: true });
      const rec = ftrace.records.lookup(kernel.sym('vfs_read'))!;
      expect(rec.count).toBe(1);
      rec.flags = FTRACE_FL.ENABLED;
      expect(ftrace.unregister_ftrace_function(o)).toEqual({ ok: true });
      expect(kernel.dmesg).toContain('WARNING: ftrace: record vfs_read count would go below zero');
      expect(rec.count).toBe(0);
    });
  });

  test('a record still flagged after the last ops left is warned about by name and flags', async () => {
    await withKernel({ functions: 4 }, ({ kernel, ftrace }) => {
      const o = ftrace.createOps({ name: 'o', callback: 'counter' });
      expect(ftrace.ftrace_set_filter(o, ['vfs_read'])).toEqual({ ok: true });
      expect(ftrace.register_ftrace_function(o)).toEqual({ ok: true });
      // Two ops by its count: the update that follows enables the site too.
      ftrace.records.lookup(kernel.sym('vfs_write'))!.flags = 2;
      expect(ftrace.unregister_ftrace_function(o)).toEqual({ ok: true });
      expect(kernel.dmesg.filter((l) => l.startsWith('WARNING'))).toEqual(['WARNING: ftrace: record vfs_write still has flags 0x80000002 after the last ops left']);
    });
  });

  test('no warning when every record is clear', async () => {
    await withKernel({ functions: 4 }, ({ kernel, ftrace }) => {
      const o = ftrace.createOps({ name: 'o', callback: 'counter' });
      expect(ftrace.register_ftrace_function(o)).toEqual({ ok: true });
      expect(ftrace.unregister_ftrace_function(o)).toEqual({ ok: true });
      expect(kernel.dmesg.filter((l) => l.startsWith('WARNING'))).toEqual([]);
      expect(ftrace.records.all().every((r) => r.flags === 0)).toBe(true);
    });
  });
});
