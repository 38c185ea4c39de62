// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace's core on the paths a scenario seldom takes: ftrace_bug() after boot,
 * the kernel's sanity warnings, the flags and errors of registration, and
 * what a call site that is none of ftrace's calls shows.
 */
import { FTRACE_FL, FTRACE_REF_MAX } from '../kernel-model/abi.js';
import { FTRACE_NOP5, ftraceCallReplace } from '../kernel-model/arch/x86/insn.js';
import { siteTargetLabel } from '../kernel-model/ftrace/core.js';
import { recFlags } from '../kernel-model/ftrace/records.js';
import { withKernel } from './helpers.js';

test('ftrace_bug() after boot: the site that did not hold the NOP is reported, and ftrace refuses everything after', async () => {
  await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
    const a = ftrace.createOps({ name: 'a', callback: 'counter' });
    ftrace.ftrace_set_filter(a, ['vfs_read']);
    kernel.machine.textPoke(kernel.sym('vfs_read'), Uint8Array.of(0xcc));
    expect(ftrace.register_ftrace_function(a)).toEqual({ ok: true });
    expect(kernel.dmesg).toEqual([
      `WARNING: ftrace failed to modify [<${'0x' + kernel.sym('vfs_read').toString(16)}>] vfs_read+0x0 (make call)\n actual:   cc 1f 44 00 00\n expected: 0f 1f 44 00 00`,
    ]);
    expect(ftrace.disabled).toBe(true);
    const b = ftrace.createOps({ name: 'b', callback: 'counter' });
    expect(ftrace.register_ftrace_function(b)).toMatchObject({ ok: false, errno: 'ENODEV', message: expect.stringContaining('registering b') });
    expect(ftrace.unregister_ftrace_function(a)).toMatchObject({ ok: false, errno: 'ENODEV', message: expect.stringContaining('unregistering a') });
    expect(ftrace.ftrace_set_filter(a, ['vfs_write'])).toMatchObject({ ok: false, errno: 'ENODEV', message: expect.stringContaining("setting a's filter") });
  });
});

describe("the kernel's own sanity checks", () => {
  test('a record left with flags after the last ops left is reported', async () => {
    await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
      const a = ftrace.createOps({ name: 'a', callback: 'counter' });
      ftrace.ftrace_set_filter(a, ['vfs_read']);
      ftrace.register_ftrace_function(a);
      ftrace.recordOf('vfs_write')!.flags = 1;
      ftrace.unregister_ftrace_function(a);
      expect(kernel.dmesg).toEqual([expect.stringMatching(/^WARNING: ftrace: record vfs_write still has flags 0x[0-9a-f]+ after the last ops left$/)]);
    });
  });

  test("a record whose count is already zero is not decremented, and says so", async () => {
    await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
      const a = ftrace.createOps({ name: 'a', callback: 'counter' });
      const b = ftrace.createOps({ name: 'b', callback: 'counter' });
      ftrace.ftrace_set_filter(a, ['vfs_read']);
      ftrace.register_ftrace_function(a);
      ftrace.register_ftrace_function(b); // keeps the core counting after a leaves
      const rec = ftrace.recordOf('vfs_read')!;
      rec.flags = recFlags.without(rec.flags, FTRACE_REF_MAX); // the count lives in the low bits
      ftrace.unregister_ftrace_function(a);
      expect(kernel.dmesg).toEqual(['WARNING: ftrace: record vfs_read count would go below zero']);
    });
  });

  test('registering twice is a warning and -EBUSY; an ENABLED ops missing from the list is -EINVAL', async () => {
    await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
      const a = ftrace.createOps({ name: 'a', callback: 'counter' });
      ftrace.register_ftrace_function(a);
      expect(a.hasFlag('INITIALIZED')).toBe(true);
      expect(ftrace.register_ftrace_function(a)).toEqual({ ok: false, code: -16, errno: 'EBUSY', message: 'a is already registered' });
      expect(kernel.dmesg).toEqual(['WARNING: ftrace: a is already registered']);
      const ghost = ftrace.createOps({ name: 'ghost', callback: 'counter' });
      ghost.setFlag('ENABLED', true);
      expect(ftrace.unregister_ftrace_function(ghost)).toEqual({ ok: false, code: -22, errno: 'EINVAL', message: 'ghost is not on ftrace_ops_list' });
      ghost.setFlag('ENABLED', false);
      ghost.setFlag('DELETED', true);
      expect(ftrace.register_ftrace_function(ghost)).toEqual({ ok: false, code: -22, errno: 'EINVAL', message: 'ghost is being deleted' });
    });
  });
});

test('IPMODIFY does not exist before v3.19', async () => {
  await withKernel({ functions: 10, era: '3.18' }, ({ ftrace }) => {
    expect(() => ftrace.createOps({ name: 'ip', callback: 'counter', flags: ['IPMODIFY'] })).toThrow(new RangeError('FTRACE_OPS_FL_IPMODIFY does not exist in v3.18'));
  });
});

test('a failed IPMODIFY filter takes back the records it had already marked', async () => {
  await withKernel({ functions: 10, era: 'modern' }, ({ ftrace }) => {
    const [first, second] = ['ksys_read', 'vfs_read'].map((f) => ftrace.recordOf(f)!);
    expect(first!.ip).toBeLessThan(second!.ip); // the loop meets first before the clash at second
    const a = ftrace.createOps({ name: 'a', callback: 'counter', flags: ['IPMODIFY'] });
    const b = ftrace.createOps({ name: 'b', callback: 'counter', flags: ['IPMODIFY'] });
    ftrace.ftrace_set_filter(a, ['vfs_read']);
    ftrace.register_ftrace_function(a);
    ftrace.ftrace_set_filter(b, ['ksys_read', 'vfs_read']);
    expect(ftrace.register_ftrace_function(b)).toMatchObject({ ok: false, errno: 'EBUSY' });
    expect(first!.has(FTRACE_FL.IPMODIFY)).toBe(false);
    ftrace.ftrace_set_filter(b, ['ksys_read']);
    expect(ftrace.register_ftrace_function(b)).toEqual({ ok: true });
  });
});

test('only the tracers whose events the trace shows start the trace clock', async () => {
  for (const [callback, running] of [['counter', false], ['function_trace', true], ['function_graph', true]] as const) {
    await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
      const o = ftrace.createOps({ name: 'o', callback });
      if (callback === 'function_graph') ftrace.graph.register(o);
      else ftrace.register_ftrace_function(o);
      expect([callback, kernel.clock.running]).toEqual([callback, running]);
    });
  }
});

test('a filter set without reset replaces the one before it', async () => {
  await withKernel({ functions: 10 }, ({ ftrace }) => {
    const a = ftrace.createOps({ name: 'a', callback: 'counter' });
    ftrace.ftrace_set_filter(a, ['vfs_read']);
    ftrace.ftrace_set_filter(a, ['vfs_write']);
    ftrace.ftrace_set_notrace(a, ['ksys_read']);
    ftrace.ftrace_set_notrace(a, ['ksys_write']);
    expect([a.filter, a.notrace]).toEqual([new Set([ftrace.recordOf('vfs_write')!.ip]), new Set([ftrace.recordOf('ksys_write')!.ip])]);
  });
});

test('a v3.x dynamic ops alone is still called through the list function; a v6 one directly', async () => {
  for (const [era, via] of [['3.18', 'ftrace_ops_list_func'], ['modern', 'ftrace_count_probe']] as const) {
    await withKernel({ functions: 10, era }, ({ kernel, ftrace }) => {
      const d = ftrace.createOps({ name: 'd', callback: 'counter', dynamic: true });
      ftrace.register_ftrace_function(d); // which marks it FTRACE_OPS_FL_DYNAMIC
      expect([era, kernel.symbolize(ftrace.ftrace_ops_get_func(d))]).toEqual([era, `${via}+0x0`]);
    });
  }
});

test('when a SAVE_REGS ops leaves a site another ops still traces, the site drops to ftrace_caller', async () => {
  await withKernel({ functions: 10, era: '3.18' }, ({ ftrace }) => {
    const a = ftrace.createOps({ name: 'a', callback: 'counter' });
    const kp = ftrace.createOps({ name: 'kp', callback: 'kprobe_regs', flags: ['SAVE_REGS'] });
    ftrace.register_ftrace_function(a);
    ftrace.ftrace_set_filter(kp, ['vfs_read']);
    ftrace.register_ftrace_function(kp);
    const rec = ftrace.recordOf('vfs_read')!;
    expect(siteTargetLabel(ftrace.siteTarget(rec))).toBe('ftrace_regs_caller');
    ftrace.unregister_ftrace_function(kp);
    expect(siteTargetLabel(ftrace.siteTarget(rec))).toBe('ftrace_caller');
    expect(rec.has(FTRACE_FL.REGS)).toBe(false);
  });
});

test('v6 without module space: the ops that remains on a site has no trampoline to give it back', async () => {
  await withKernel({ functions: 10, era: 'modern', modules: false }, ({ kernel, ftrace }) => {
    const [a, b] = ['a', 'b'].map((name) => ftrace.createOps({ name, callback: 'counter' }));
    for (const o of [a!, b!]) {
      ftrace.ftrace_set_filter(o, ['vfs_read']);
      ftrace.register_ftrace_function(o);
    }
    ftrace.unregister_ftrace_function(b!);
    expect(siteTargetLabel(ftrace.siteTarget(ftrace.recordOf('vfs_read')!))).toBe('ftrace_caller');
    expect(kernel.dmesg).toEqual([]);
  });
});

test('a call site that is none of ftrace’s: a call elsewhere, or bytes that are no call', async () => {
  await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
    const rec = ftrace.recordOf('vfs_read')!;
    const call = ftraceCallReplace(rec.ip, kernel.sym('schedule'));
    kernel.machine.textPoke(rec.ip, call);
    const t = ftrace.siteTarget(rec);
    expect(t).toEqual({ kind: 'other', address: kernel.sym('schedule'), bytes: call });
    expect(siteTargetLabel(t)).toBe(`call 0x${kernel.sym('schedule').toString(16)}`);
    const junk = Uint8Array.of(0x90, 0x90, 0x90, 0x90, 0xcc);
    kernel.machine.textPoke(rec.ip, junk);
    expect(siteTargetLabel(ftrace.siteTarget(rec))).toBe('unknown');
    kernel.machine.textPoke(rec.ip, FTRACE_NOP5);
    expect(siteTargetLabel(ftrace.siteTarget(rec))).toBe('nop');
  });
});

test("boot reports every record, and the NOP conversion's host time", async () => {
  await withKernel({ functions: 10 }, ({ ftrace }) => {
    const r = ftrace.convertCallSitesToNop();
    expect(r.records).toBe(ftrace.records.length);
    expect(r.nopMs).toBeGreaterThanOrEqual(0);
    expect(r.nopMs).toBeLessThan(60_000);
  });
});
