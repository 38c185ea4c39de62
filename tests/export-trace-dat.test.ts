// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * trace.dat files read by the real reader: Debian's trace-cmd (installed by
 * .ci/run). Every event of the simulator's own `trace` view must come out of
 * `trace-cmd report` in order, with the same time, task, CPU, function and parent.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackgroundCpus, type BackgroundCpus } from '../kernel-model/background-cpus.js';
import { captureTrace, traceDatInput } from '../kernel-model/export/capture.js';
import { writeTraceDat, type FunctionEventRecord } from '../kernel-model/export/trace-dat.js';
import { traceFile } from '../kernel-model/tracefs.js';
import { resolveScenario } from '../scenarios/engine/catalog.js';
import { loadScenarioFile } from '../scenarios/engine/load.js';
import { inspectScenario } from '../scenarios/engine/run.js';

const dir = mkdtempSync(join(tmpdir(), 'ftrace-sim-dat-'));

function traceCmd(...args: string[]): string {
  const r = spawnSync('trace-cmd', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`trace-cmd is needed (apt-get install -y trace-cmd; .ci/run installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`trace-cmd ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface Line {
  task: string;
  cpu: number;
  ts: string;
  fn: string;
  parent: string;
}

/** The `trace` view: `comm-pid [cpu] flags ts: func <-parent`. */
function viewLines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^\s*(\S+-\d+)\s+\[(\d+)\] \.{4}\s+(\d+\.\d+): (\S+)(?: <-(\S+))?$/.exec(l);
      if (!m) throw new Error(`not a trace line: ${l}`);
      return { task: m[1]!, cpu: Number(m[2]), ts: m[3]!, fn: m[4]!, parent: m[5] ?? '' };
    });
}

/** `trace-cmd report -O parent=1 -O indent=0`: `comm-pid [cpu] ts: function: func <-- parent`. */
function reportLines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l && !/^cpus=\d+$/.test(l))
    .map((l) => {
      const m = /^\s*(\S+-\d+)\s+\[(\d+)\]\s+(\d+\.\d+): function:\s+(\S+)(?: <-- (\S+))?$/.exec(l);
      if (!m) throw new Error(`not a report line: ${l}`);
      return { task: m[1]!, cpu: Number(m[2]), ts: m[3]!, fn: m[4]!, parent: m[5] ?? '' };
    });
}

/** Runs a scenario (with other CPUs at work when cpus > 1), writes trace.dat, and returns it with the trace view. */
async function record(name: string, cpus = 1, seed = 1) {
  const s = loadScenarioFile(resolveScenario(name)!, name);
  let bg: BackgroundCpus | undefined;
  let out: { file: string; view: string; pages: number[]; events: number } | undefined;
  await inspectScenario(
    s,
    undefined,
    ({ kernel }) => {
      bg?.finish();
      const { bytes, stats } = writeTraceDat(traceDatInput(captureTrace(kernel)));
      const file = join(dir, `${name}-${cpus}.dat`);
      writeFileSync(file, bytes);
      out = { file, view: traceFile(kernel), pages: stats.pages, events: stats.events };
    },
    cpus > 1
      ? {
          kernelConfig: { cpus },
          onBoot: (k) => {
            bg = startBackgroundCpus(k, seed);
            return bg.afterStep;
          },
        }
      : {},
  );
  return out!;
}

function expectSameEvents(r: { file: string; view: string }): Line[] {
  const view = viewLines(r.view);
  const report = reportLines(traceCmd('report', '-O', 'parent=1', '-O', 'indent=0', '-i', r.file));
  expect(report.length).toBe(view.length);
  expect(report).toEqual(view);
  return view;
}

test('kprobe-plus-function-tracer: trace-cmd report prints the trace view\'s events, over several pages', async () => {
  const r = await record('kprobe-plus-function-tracer');
  const lines = expectSameEvents(r);
  expect(lines.length).toBeGreaterThan(1000);
  expect(r.pages[0]).toBeGreaterThan(5); // a long run: many ring-buffer pages
  expect(new Set(lines.map((l) => l.parent))).toContain('vfs_read');
  const summary = traceCmd('dump', '--summary', '-i', r.file);
  expect(summary).toMatch(/6\s+\[Version\]/);
  expect(summary).toMatch(/1 \[CPUs with tracing data\]/);
});

test('three CPUs, several tasks: each event keeps the CPU and the pid the guest recorded', async () => {
  const r = await record('function-tracer', 3, 7);
  const lines = expectSameEvents(r);
  expect(new Set(lines.map((l) => l.cpu))).toEqual(new Set([0, 1, 2]));
  const tasks = new Set(lines.map((l) => l.task));
  expect(tasks.has('ftrace-sim-1')).toBe(true);
  expect([...tasks].filter((t) => /^(syscalls|callgraph)-1\d\d$/.test(t)).length).toBeGreaterThanOrEqual(3);
  // A task runs on one CPU only.
  for (const t of tasks) expect(new Set(lines.filter((l) => l.task === t).map((l) => l.cpu)).size).toBe(1);
  expect(traceCmd('dump', '--summary', '-i', r.file)).toMatch(/3 \[CPUs with tracing data\]/);
});

test('deltas too large for 27 bits go through time extends that trace-cmd adds back', () => {
  // Gaps of 2^27 ns and more (0.134 s, 10 s) between events of a CPU, and a CPU with nothing.
  const times = [1_000n, 2_000n, 1_000n + (1n << 27n), 10_000_000_000n, 10_000_001_000n, 400_000_000_123n];
  const events: FunctionEventRecord[] = times.map((tsNs, i) => ({ tsNs, cpu: i % 2 === 0 ? 0 : 2, pid: 1, ip: 0xffffffff81000000n, parentIp: 0xffffffff81000010n }));
  const { bytes, stats } = writeTraceDat({
    cpus: 3,
    events,
    kallsyms: [
      { address: 0xffffffff81000000n, type: 'T', name: 'first_func' },
      { address: 0xffffffff81000010n, type: 'T', name: 'second_func' },
    ],
    cmdlines: new Map([[1, 'ftrace-sim']]),
  });
  expect(stats.timeExtends).toBeGreaterThanOrEqual(3);
  const file = join(dir, 'extends.dat');
  writeFileSync(file, bytes);
  const got = reportLines(traceCmd('report', '-O', 'parent=1', '-O', 'indent=0', '-i', file));
  // trace-cmd prints seconds with microseconds, rounded to the nearest.
  const us = (ns: bigint) => {
    const u = (ns + 500n) / 1000n;
    return `${u / 1_000_000n}.${String(u % 1_000_000n).padStart(6, '0')}`;
  };
  expect(got.map((l) => [l.ts, l.cpu, l.fn, l.parent])).toEqual(times.map((t, i) => [us(t), i % 2 === 0 ? 0 : 2, 'first_func', 'second_func']));
});

test('ftrace-sim record: writes the file trace-cmd reads, says what it wrote, and refuses a format it lacks', () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'ftrace-sim.js'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const file = join(dir, 'cli.dat');
  const r = cli('record', 'two-static-ops', '-o', file, '--cpus', '2', '--seed', '3', '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const doc = JSON.parse(r.stdout) as { events: number; cpus: number; seed: number; pagesPerCpu: number[] };
  expect(doc).toMatchObject({ cpus: 2, seed: 3 });
  const report = reportLines(traceCmd('report', '-O', 'parent=1', '-O', 'indent=0', '-i', file));
  expect(report).toHaveLength(doc.events);
  expect(doc.pagesPerCpu).toHaveLength(2);
  const bad = cli('record', 'two-static-ops', '-o', file, '--format', 'perf');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/--format is one of dat, chrome/);
});
