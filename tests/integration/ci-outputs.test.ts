// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What CI systems read from `run`: JUnit XML that an XML parser and a JUnit
 * schema (xmllint, from Debian's libxml2-utils) accept, shards that together
 * run every scenario once, and parallel workers that change nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { shardOf, shardOption } from '../../bin/commands/run.js';
import { seedRange } from '../../bin/commands/smp.js';
import { torture } from '../../kernel-model/smp/torture.js';
import { UsageError, toJson } from '../../bin/output.js';
import { junitXml, xmlEscape } from '../../bin/report/junit.js';
import { runJobs } from '../../bin/workers/pool.js';
import { builtinScenarioFiles, displayPath } from '../../scenarios/engine/catalog.js';
import type { ScenarioResult } from '../../scenarios/engine/run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'ftrace-sim-ci-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ftrace-sim.js'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? r.signal, out: r.stdout, err: r.stderr };
}

function xmllint(file: string): { code: number | null; err: string } {
  const r = spawnSync('xmllint', ['--noout', '--schema', join(root, 'tests', 'fixtures', 'junit.xsd'), file], { encoding: 'utf8' });
  if (r.error) throw new Error(`xmllint is needed (apt-get install -y libxml2-utils; .ci/run installs it): ${r.error.message}`);
  return { code: r.status, err: r.stderr };
}

interface Testcase {
  '@_name': string;
  '@_file': string;
  '@_line'?: string;
  failure?: { '#text': string; '@_message': string };
}
interface Testsuite {
  '@_name': string;
  '@_file': string;
  '@_tests': string;
  '@_failures': string;
  testcase: Testcase[];
}

function parseJunit(xml: string): Testsuite[] {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'testsuite' || name === 'testcase' }).parse(xml) as { testsuites: { testsuite: Testsuite[] } };
  return doc.testsuites.testsuite;
}

type Results = { scenarios: Record<string, unknown>[] };

test('run --all --jobs 2 --junit: XML a parser and the JUnit schema accept; the shards run each scenario once, serially, with the same results', async () => {
  const xmlFile = join(dir, 'all.xml');
  const all = cli('run', '--all', '--jobs', '2', '--json', '--junit', xmlFile);
  expect(all.err).toBe('');
  expect(all.code).toBe(0);
  const parallel = JSON.parse(all.out) as Results;
  const builtin = builtinScenarioFiles().map(displayPath);
  expect(parallel.scenarios.map((s) => s.file)).toEqual(builtin);

  expect(xmllint(xmlFile)).toEqual({ code: 0, err: expect.stringContaining('validates') });
  const suites = parseJunit(readFileSync(xmlFile, 'utf8'));
  expect(suites.map((s) => s['@_file'])).toEqual(builtin);
  for (const s of suites) {
    expect(Number(s['@_tests'])).toBe(s.testcase.length);
    expect(s['@_failures']).toBe('0');
    for (const c of s.testcase) {
      expect(c['@_file']).toBe(s['@_file']);
      if (!c['@_name'].includes('fewer instructions')) expect(Number(c['@_line'])).toBeGreaterThan(1);
    }
  }

  // Shards 1/3, 2/3, 3/3, each run serially (in this process): together every
  // scenario once, with the same results as the parallel run.
  const inputs = builtinScenarioFiles().map((file) => ({ file, display: displayPath(file) }));
  const sharded: ScenarioResult[] = [];
  for (const i of [1, 2, 3]) {
    const runs = await runJobs('scenario', shardOf(inputs, shardOption(`${i}/3`)), 1);
    sharded.push(...runs.map((r) => r.result));
  }
  expect(sharded.map((s) => s.file).sort()).toEqual([...builtin].sort());
  const byFile = new Map(sharded.map((s) => [s.file, s]));
  expect(parallel.scenarios.map((s) => JSON.parse(toJson(byFile.get(String(s.file)))))).toEqual(parallel.scenarios);
});

test('a failed check is a <failure> with its detail, at the file and line of its step', async () => {
  const fixture = join(root, 'tests', 'fixtures', 'failing.yaml');
  const [run] = await runJobs('scenario', [{ file: fixture, display: 'tests/fixtures/failing.yaml' }], 1);
  const xmlFile = join(dir, 'failing.xml');
  writeFileSync(xmlFile, junitXml([run!]));
  expect(xmllint(xmlFile).code).toBe(0);
  const [suite] = parseJunit(readFileSync(xmlFile, 'utf8'));
  expect(suite!['@_failures']).toBe('1');
  const failed = suite!.testcase.filter((c) => c.failure);
  expect(failed).toHaveLength(1);
  const line = readFileSync(fixture, 'utf8').split('\n').findIndex((l) => l.includes('callsite: { vfs_read: nop }')) + 1;
  expect(failed[0]).toMatchObject({
    '@_name': 'steps[1] expect: callsite vfs_read',
    '@_file': 'tests/fixtures/failing.yaml',
    '@_line': String(line),
    failure: { '#text': 'expected nop, guest memory holds trampoline(tracer)' },
  });
});

test('shards: i/n with 1 <= i <= n, round robin over the scenarios in order', () => {
  expect(shardOption('2/3')).toEqual({ index: 2, count: 3 });
  for (const bad of ['4/3', '0/3', '1/0', 'two', '1/3/4']) expect(() => shardOption(bad)).toThrow(UsageError);
  const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  expect([1, 2, 3].map((i) => shardOf(items, { index: i, count: 3 }))).toEqual([['a', 'd', 'g'], ['b', 'e'], ['c', 'f']]);
});

test('XML escaping: markup and forbidden control characters never reach the document', () => {
  const x = xmlEscape('a<b>&"c\'\u0001\u001f');
  expect(x).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  expect(XMLValidator.validate(`<t a="${x}">${x}</t>`)).toBe(true);
});

test('torture --campaign: seeds run in workers; each seed\'s result is what it gives when replayed alone', async () => {
  const r = cli('torture', '--campaign', '--seeds', '3..4', '--changes', '10', '--cpus', '2', '--jobs', '2', '--json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const doc = JSON.parse(r.out) as { passed: boolean; failedSeeds: number[]; results: { seed: number; passed: boolean; events: number; int3Hits: number; violations: string[] }[] };
  expect(doc.results.map((x) => x.seed)).toEqual([3, 4]);
  expect(doc.failedSeeds).toEqual([]);
  for (const x of doc.results) {
    const alone = await torture({ cpus: 2, changes: 10, era: '3.18', seed: x.seed });
    expect(x).toEqual({ seed: x.seed, passed: alone.passed, events: alone.events, int3Hits: alone.int3Hits, violations: alone.violations });
    expect(x.events).toBeGreaterThan(0);
  }
  expect(new Set(doc.results.map((x) => x.events)).size).toBeGreaterThan(1); // different seeds, different runs
  expect(seedRange('7..9')).toEqual([7, 8, 9]);
  for (const bad of ['9..7', '1-3', '..3']) expect(() => seedRange(bad)).toThrow(UsageError);
});
