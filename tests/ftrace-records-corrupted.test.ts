// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Records whose flags were changed behind ftrace's back: the kernel's
 * WARN_ONs fire, with the record named, and ftrace carries on.
 */
import { FTRACE_FL } from '../kernel-model/abi.js';
import { withKernel } from './helpers.js';

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
