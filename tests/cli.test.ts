// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The ftrace-sim command as a user runs it: exit codes, one-line errors,
 * --json. The commands run in-process through main();
 * tests/integration/process.test.ts starts the installed entry point itself.
 */
import { cli } from './helpers.js';

test('run: 0 when every scenario passes, with one JSON document of every scenario', async () => {
  const r = await cli('run', 'no-modules', 'two-static-ops', '--json');
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

test('run: 1 when a check fails, naming the step and both values', async () => {
  const r = await cli('run', 'tests/fixtures/failing.yaml');
  expect(r.code).toBe(1);
  expect(r.out).toContain('FAIL failing');
  expect(r.out).toContain('steps[1] expect: callsite vfs_read');
  expect(r.out).toContain('expected nop, guest memory holds trampoline(tracer)');
});

test('run: 2 with a one-line reason for a bad file, an unknown scenario, or bad usage', async () => {
  const bad = await cli('run', 'tests/fixtures/bad-key.yaml');
  expect(bad.code).toBe(2);
  expect(bad.err.trim()).toBe("ftrace-sim: tests/fixtures/bad-key.yaml:6: steps[1].call.tims: unknown key 'tims'");
  expect(bad.out).toBe('');
  const unknown = await cli('run', 'no-such-scenario');
  expect(unknown.code).toBe(2);
  expect(unknown.err).toMatch(/^ftrace-sim: no scenario 'no-such-scenario'/);
  expect((await cli('run')).code).toBe(2);
  expect((await cli('boot', '--functions', 'many')).code).toBe(2);
  expect((await cli('frobnicate')).code).toBe(2);
});

test('boot --json and disasm print what the guest holds', async () => {
  const b = await cli('boot', '--functions', '100', '--json');
  expect(b.code).toBe(0);
  const s = JSON.parse(b.out);
  expect(s.records).toBe(s.nopSites);
  expect(s.regions.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['kernel-text', 'modules', 'direct-map']));
  const d = await cli('disasm', 'vfs_read', '--count', '2', '--functions', '100');
  expect(d.code).toBe(0);
  expect(d.out).toMatch(/^ffffffff81[0-9a-f]{6} <vfs_read\+0x0>:  0f 1f 44 00 00 +nopl/);
  expect((await cli('disasm', 'no_such_symbol')).code).toBe(2);
});

test('the graph tracer from the command line: its trace file, its settings, torture --graph', async () => {
  const t = await cli('tracefs', 'trace', '--after', 'graph-plus-kprobe', '--step', '9', '--json');
  expect(t.code).toBe(0);
  const lines = (JSON.parse(t.out) as { lines: string[] }).lines;
  expect(lines.slice(0, 3)).toEqual(['# tracer: function_graph', '#', '# CPU  DURATION                  FUNCTION CALLS']);
  expect(lines).toContain(' 0)               |  vfs_read() {');
  expect(lines.some((l) => /^ 0\)   \d\.\d{3} us    \|    rw_verify_area\(\);$/.test(l))).toBe(true);
  const d = await cli('tracefs', 'max_graph_depth', '--after', 'graph-depth', '--step', '0');
  expect(d).toMatchObject({ code: 0, out: '2\n' });
  const g = await cli('torture', '--graph', '--cpus', '3', '--changes', '30', '--seed', '3', '--json');
  expect(g.code).toBe(0);
  expect(JSON.parse(g.out)).toMatchObject({ passed: true, seed: 3, violations: [] });
});
