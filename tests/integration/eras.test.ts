// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Every built-in scenario on every kernel it describes, through the
 * installed command: `run --all --era E` for each era, and the mcount
 * kernels (`--callsites mcount`), each must end with exit 0 and nothing
 * failed; a scenario that does not describe a kernel is skipped, not run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERAS } from '../../kernel-model/limits.js';
import type { ScenarioResult } from '../../scenarios/engine/run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function runAll(...args: string[]): { code: number | null; results: ScenarioResult[] } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ftrace-sim.js'), 'run', '--all', '--json', ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, results: (JSON.parse(r.stdout) as { scenarios: ScenarioResult[] }).scenarios };
}

const kernels = [...ERAS.map((era) => ['--era', era]), ...(['3.17', '3.18', '3.19'] as const).map((era) => ['--era', era, '--callsites', 'mcount'])];

test.each(kernels.map((a) => [a.join(' '), a] as const))('run --all %s passes', (_label, args) => {
  const { code, results } = runAll(...args);
  const failed = results.filter((r) => !r.passed).map((r) => `${r.name}: ${r.checks.filter((c) => !c.passed).map((c) => c.name).join(', ')}`);
  expect(failed).toEqual([]);
  expect(code).toBe(0);
  const ran = results.filter((r) => !r.skipped);
  // Each ran on the kernel asked for.
  for (const r of ran) expect([r.name, r.era, r.callsites]).toEqual([r.name, args[1], args[3] ?? 'fentry']);
  expect(ran.length).toBeGreaterThanOrEqual(10);
});

test('the scenarios a kernel skips are skipped test cases in the JUnit XML, which the schema accepts', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ftrace-sim-eras-')), 'junit.xml');
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ftrace-sim.js'), 'run', '--all', '--era', '3.17', '--junit', file], { cwd: root, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const xml = readFileSync(file, 'utf8');
  expect(xml).toMatch(/<testcase name="on 3\.17 fentry" classname="ipmodify"[^>]*>\s*<skipped message="describes 3\.19, modern, not 3\.17"\/>/);
  const lint = spawnSync('xmllint', ['--noout', '--schema', join(root, 'tests', 'fixtures', 'junit.xsd'), file], { encoding: 'utf8' });
  expect(lint.error).toBeUndefined();
  expect(lint.status).toBe(0);
});
