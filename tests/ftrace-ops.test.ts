// SPDX-License-Identifier: GPL-2.0-or-later
/* struct ftrace_ops in guest memory: its hashes' lifetime, its memory, and which hash a lookup reads. */
import { OPS } from '../kernel-model/abi.js';
import { hashLong, writeHashPointer } from '../kernel-model/ftrace/ops.js';
import { withKernel } from './helpers.js';

test('a replaced filter hash is freed, poisoned, only after a grace period; at once with hashFree: immediate', async () => {
  for (const hashFree of ['rcu', 'immediate'] as const) {
    await withKernel({ functions: 10, hashFree }, ({ kernel, ftrace }) => {
      const a = ftrace.createOps({ name: 'a', callback: 'counter' });
      const slot = a.addr + BigInt(OPS.FILTER_HASH);
      const [read, write] = ['vfs_read', 'vfs_write'].map((f) => ftrace.recordOf(f)!.ip);
      writeHashPointer(kernel, slot, new Set([read!]));
      const old = kernel.memory.readU64(slot);
      const count = () => kernel.memory.readU64(old + 8n); // ftrace_hash.count
      writeHashPointer(kernel, slot, new Set([write!]));
      expect(kernel.memory.readU64(slot)).not.toBe(old);
      expect([hashFree, count()]).toEqual([hashFree, hashFree === 'rcu' ? 1n : 0x6b6b6b6b6b6b6b6bn]);
      kernel.rcuGracePeriod();
      expect(count()).toBe(0x6b6b6b6b6b6b6b6bn);
    });
  }
});

test('destroying a dynamic ops gives back its struct and its hashes', async () => {
  await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
    const before = kernel.kmalloc.bytesInUse;
    const d = ftrace.createOps({ name: 'd', callback: 'counter', dynamic: true });
    ftrace.ftrace_set_filter(d, ['vfs_read']);
    ftrace.ftrace_set_notrace(d, ['vfs_write']);
    expect(kernel.kmalloc.bytesInUse).toBeGreaterThan(before);
    expect(ftrace.destroyOps(d)).toEqual({ ok: true });
    kernel.rcuGracePeriod();
    expect(kernel.kmalloc.bytesInUse).toBe(before);
  });
});

test("a lookup reads the current hashes unless it asks for the old ones, which default to the current", async () => {
  await withKernel({ functions: 10 }, ({ ftrace }) => {
    const a = ftrace.createOps({ name: 'a', callback: 'counter' });
    const [read, write] = ['vfs_read', 'vfs_write'].map((f) => ftrace.recordOf(f)!.ip);
    ftrace.ftrace_set_filter(a, ['vfs_read']);
    expect([a.tracesIp(read!), a.tracesIp(read!, 'old'), a.tracesIp(write!, 'old')]).toEqual([true, true, false]);
    a.oldFilter = new Set([write!]);
    a.oldNotrace = new Set([read!]);
    expect([a.tracesIp(read!), a.tracesIp(write!), a.tracesIp(read!, 'old'), a.tracesIp(write!, 'old')]).toEqual([true, false, false, true]);
  });
});

test('hash_long: the top `bits` bits of ip times the golden ratio; one bucket for bits 0', () => {
  expect(hashLong(0xffffffff81000880n, 0)).toBe(0);
  expect(hashLong(1n, 4)).toBe(Number((0x61c8864680b583ebn >> 60n) & 0xfn));
  expect(hashLong(0xffffffff81000880n, 12)).toBeLessThan(4096);
});
