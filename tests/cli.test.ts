// SPDX-License-Identifier: GPL-2.0-or-later
/* The ftrace-sim command as a user runs it: exit codes, one-line errors, --json. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function cli(...args: string[]) {
  // The TypeScript sources, as `npm run dev` runs them (bin/ftrace-sim.js runs their build).
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bin', 'cli.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('run: 0 when every scenario passes, with the JSON document of the issue', () => {
  const r = cli('run', 'no-modules', 'two-static-ops', '--json');
  expect(r.code).toBe(0);
  const doc = JSON.parse(r.out) as { scenarios: Record<string, unknown>[] };
  expect(doc.scenarios.map((s) => s.name)).toEqual(['no-modules', 'two-static-ops']);
  for (const s of doc.scenarios) {
    expect(s).toMatchObject({ passed: true, callbacks: { rdxMismatches: 0 } });
    expect(Object.keys(s)).toEqual(expect.arrayContaining(['name', 'passed', 'checks', 'callbacks', 'instructionsPerTracedCall']));
  }
  const byOps = (doc.scenarios[1]!.callbacks as { byOps: Record<string, { address: string; invocations: number }> }).byOps;
  expect(byOps.vfs).toEqual({ address: expect.stringMatching(/^0xffffffff83[0-9a-f]{6}$/), invocations: 20 });
});

test('run: 1 when a check fails, naming the step and both values', () => {
  const r = cli('run', 'tests/fixtures/failing.yaml');
  expect(r.code).toBe(1);
  expect(r.out).toContain('FAIL failing');
  expect(r.out).toContain('steps[1] expect: callsite vfs_read');
  expect(r.out).toContain('expected nop, guest memory holds trampoline(tracer)');
});

test('run: 2 with a one-line reason for a bad file, an unknown scenario, or bad usage', () => {
  const bad = cli('run', 'tests/fixtures/bad-key.yaml');
  expect(bad.code).toBe(2);
  expect(bad.err.trim()).toBe("ftrace-sim: tests/fixtures/bad-key.yaml:6: steps[1].call.tims: unknown key 'tims'");
  expect(bad.out).toBe('');
  const unknown = cli('run', 'no-such-scenario');
  expect(unknown.code).toBe(2);
  expect(unknown.err).toMatch(/^ftrace-sim: no scenario 'no-such-scenario'/);
  expect(cli('run').code).toBe(2);
  expect(cli('boot', '--functions', 'many').code).toBe(2);
  expect(cli('frobnicate').code).toBe(2);
});

test('boot --json and disasm print what the guest holds', () => {
  const b = cli('boot', '--functions', '100', '--json');
  expect(b.code).toBe(0);
  const s = JSON.parse(b.out);
  expect(s.records).toBe(s.nopSites);
  expect(s.regions.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['kernel-text', 'modules', 'direct-map']));
  const d = cli('disasm', 'vfs_read', '--count', '2', '--functions', '100');
  expect(d.code).toBe(0);
  expect(d.out).toMatch(/^ffffffff81[0-9a-f]{6} <vfs_read\+0x0>:  0f 1f 44 00 00 +nopl/);
  expect(cli('disasm', 'no_such_symbol').code).toBe(2);
});
