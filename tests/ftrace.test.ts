// SPDX-License-Identifier: GPL-2.0-or-later
import { boot } from '../kernel-model/boot.js';
import { filterParseRegex, globMatches } from '../kernel-model/ftrace/glob.js';

describe("filter_parse_regex (v3.18's glob)", () => {
  test.each([
    ['vfs_read', 'full', 'vfs_read', ['vfs_read'], ['vfs_readv', 'xvfs_read']],
    ['vfs_*', 'front', 'vfs_', ['vfs_read', 'vfs_write'], ['ksys_read']],
    ['*_read', 'end', '_read', ['vfs_read', 'ksys_read'], ['vfs_readv']],
    ['*sync*', 'middle', 'sync', ['new_sync_read', 'sync'], ['snyc']],
    ['*', 'end', '', ['anything'], []], // a leading '*' with nothing after it: every name
    ['a*b', 'front', 'a', ['abc', 'axe'], ['bab']], // truncated at the second '*', as before v4.10
  ] as const)('%s', (pattern, type, search, yes, no) => {
    const g = filterParseRegex(pattern);
    expect(g).toEqual({ negate: false, type, search });
    for (const n of yes) expect(globMatches(g, n)).toBe(true);
    for (const n of no) expect(globMatches(g, n)).toBe(false);
  });
  test('! negates', () => {
    expect(filterParseRegex('!vfs_*')).toEqual({ negate: true, type: 'front', search: 'vfs_' });
  });
});

test("the kernel's error results: already registered, not registered, no match", async () => {
  const { kernel, ftrace } = await boot({ functions: 0 });
  try {
    const o = ftrace.createOps({ name: 'o', callback: 'counter' });
    expect(ftrace.unregister_ftrace_function(o)).toMatchObject({ ok: false, errno: 'EBUSY', code: -16 });
    expect(ftrace.register_ftrace_function(o)).toEqual({ ok: true });
    expect(ftrace.register_ftrace_function(o)).toMatchObject({ ok: false, errno: 'EBUSY', message: 'o is already registered' });
    expect(ftrace.ftrace_set_filter(o, ['nothing_like_this'])).toMatchObject({ ok: false, errno: 'EINVAL', code: -22 });
    expect(ftrace.destroyOps(o)).toMatchObject({ ok: false, errno: 'EBUSY' });
    expect(ftrace.unregister_ftrace_function(o)).toEqual({ ok: true });
    expect(ftrace.destroyOps(o)).toEqual({ ok: true });
    expect(() => ftrace.createOps({ name: 'p', callback: 'counter' })).not.toThrow();
    expect(() => ftrace.createOps({ name: 'p', callback: 'counter' })).toThrow(/already exists/);
  } finally {
    kernel.close();
  }
});
