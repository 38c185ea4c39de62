// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The trace in the field's own formats, checked with their real readers:
 * trace.dat read by Debian's trace-cmd (installed by .ci/run), and Chrome
 * trace-event JSON checked against a schema of the format. Every event of the
 * simulator's own `trace` view must come out in order, with the same time,
 * task, CPU, function and parent. Each scenario runs once and feeds every writer.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { startBackgroundCpus, type BackgroundCpus } from '../../kernel-model/smp/background-cpus.js';
import { captureTrace, traceDatInput } from '../../kernel-model/export/capture.js';
import { chromeTrace, cpuProcessId, type ChromeTrace } from '../../kernel-model/export/chrome.js';
import { FtraceInternals } from '../../kernel-model/export/internals.js';
import { writeTraceDat, type FunctionEventRecord } from '../../kernel-model/export/trace-dat.js';
import { traceFile } from '../../kernel-model/views/tracefs.js';
import { resolveScenario } from '../../scenarios/engine/catalog.js';
import { loadScenarioFile } from '../../scenarios/engine/load.js';
import { inspectScenario } from '../../scenarios/engine/run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'ftrace-sim-export-'));
const schema = JSON.parse(readFileSync(join(root, 'tests', 'fixtures', 'trace-event.schema.json'), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(schema);

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

interface Recording {
  view: string;
  dat: string;
  pages: number[];
  timeExtends: number;
  chrome: ChromeTrace;
}

/** Runs a scenario (other CPUs at work when cpus > 1; ftrace's internals hooked when asked) and writes every format. */
async function record(name: string, o: { cpus?: number; seed?: number; internals?: boolean; traceEntries?: number } = {}): Promise<Recording> {
  const cpus = o.cpus ?? 1;
  const s = loadScenarioFile(resolveScenario(name) ?? join(root, name), name);
  let bg: BackgroundCpus | undefined;
  let internals: FtraceInternals | undefined;
  let out: Recording | undefined;
  await inspectScenario(
    s,
    undefined,
    ({ kernel }) => {
      bg?.finish();
      internals?.finish();
      const t = captureTrace(kernel);
      const { bytes, stats } = writeTraceDat(traceDatInput(t));
      const dat = join(dir, `${name.replace(/\W/g, '_')}-${cpus}.dat`);
      writeFileSync(dat, bytes);
      // The JSON goes through text and back, as a viewer gets it.
      const chrome = JSON.parse(JSON.stringify(chromeTrace(t, { scenario: name }, internals?.edges))) as ChromeTrace;
      out = { view: traceFile(kernel), dat, pages: stats.pages, timeExtends: stats.timeExtends, chrome };
    },
    {
      kernelConfig: { cpus, ...(o.traceEntries ? { traceEntries: o.traceEntries } : {}) },
      onBoot: (k, f) => {
        if (o.internals) (internals = new FtraceInternals(k, f)).attach();
        if (cpus > 1) return (bg = startBackgroundCpus({ kernel: k, ftrace: f }, o.seed ?? 1)).afterStep;
      },
    },
  );
  return out!;
}

function expectReportMatchesView(r: Recording): Line[] {
  const view = viewLines(r.view);
  const report = reportLines(traceCmd('report', '-O', 'parent=1', '-O', 'indent=0', '-i', r.dat));
  expect(report.length).toBe(view.length);
  expect(report).toEqual(view);
  return view;
}

/** The Chrome JSON is valid and holds the view's events, at their µs times, on their CPU's and task's track. */
function expectChromeMatchesView(doc: ChromeTrace, view: Line[]): void {
  expect(validate(doc)).toBe(true);
  expect(validate.errors ?? []).toEqual([]);
  const threadNames = new Map(doc.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}/${e.tid}`, e.args!.name]));
  const instants = doc.traceEvents.filter((e) => e.ph === 'i');
  const µs = (ts: number) => `${Math.floor(ts / 1e6)}.${String(ts % 1e6).padStart(6, '0')}`;
  expect(instants.map((e) => ({ task: threadNames.get(`${e.pid}/${e.tid}`), cpu: e.pid - 1, ts: µs(e.ts!), fn: e.name, parent: e.args!.parent }))).toEqual(view);
  for (const e of instants) expect(threadNames.get(`${e.pid}/${e.tid}`)).toMatch(new RegExp(`-${e.tid}$`));
}

test("kprobe-plus-function-tracer: trace-cmd report prints the trace view's events, over many pages", async () => {
  const r = await record('kprobe-plus-function-tracer');
  const lines = expectReportMatchesView(r);
  expect(lines.length).toBeGreaterThan(1000);
  expect(r.pages[0]).toBeGreaterThan(5); // a long run: many ring-buffer pages
  expect(new Set(lines.map((l) => l.parent))).toContain('vfs_read');
  const summary = traceCmd('dump', '--summary', '-i', r.dat);
  expect(summary).toMatch(/6\s+\[Version\]/);
  expect(summary).toMatch(/1 \[CPUs with tracing data\]/);
  // kallsyms has the tracer's trampoline, as the kernel shows it; saved_cmdlines the task.
  expect(traceCmd('dump', '--kallsyms', '-i', r.dat)).toMatch(/^ffffffffa0[0-9a-f]{6} t ftrace_trampoline\[tracer\]\t\[__builtin__ftrace\]$/m);
  expect(traceCmd('dump', '--cmd-lines', '-i', r.dat)).toMatch(/^1 sim\/0$/m);
});

test('three CPUs, several tasks: trace.dat and the Chrome JSON keep the CPU and pid the guest recorded, a track per CPU and per task', async () => {
  const r = await record('function-tracer', { cpus: 3, seed: 7 });
  const lines = expectReportMatchesView(r);
  expect(new Set(lines.map((l) => l.cpu))).toEqual(new Set([0, 1, 2]));
  const tasks = new Set(lines.map((l) => l.task));
  expect(tasks.has('sim/0-1')).toBe(true);
  expect([...tasks].filter((t) => /^(syscalls|callgraph)-1\d\d$/.test(t)).length).toBeGreaterThanOrEqual(3);
  for (const t of tasks) expect(new Set(lines.filter((l) => l.task === t).map((l) => l.cpu)).size).toBe(1); // tasks stay on their CPU
  expect(traceCmd('dump', '--summary', '-i', r.dat)).toMatch(/3 \[CPUs with tracing data\]/);

  expectChromeMatchesView(r.chrome, lines);
  const processes = r.chrome.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name');
  expect(processes.map((e) => [e.pid, e.args!.name])).toEqual([0, 1, 2].map((c) => [cpuProcessId(c), `CPU ${c}`]));
  const threads = r.chrome.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => `${e.pid}/${e.tid}`);
  expect(threads.length).toBe(new Set(threads).size);
  expect(new Set(threads)).toEqual(new Set(lines.map((l) => `${cpuProcessId(l.cpu)}/${l.task.replace(/.*-/, '')}`)));
});

test("function-tracer as Chrome JSON with --ftrace-internals: the schema passes, balanced nested slices, each event inside the callback that wrote it under its trampoline", async () => {
  const r = await record('function-tracer', { internals: true });
  const view = expectReportMatchesView(r);
  expectChromeMatchesView(r.chrome, view);
  const stacks = new Map<string, string[]>();
  const lastTs = new Map<string, number>();
  const seen = new Map<string, number>();
  for (const e of r.chrome.traceEvents) {
    if (e.ph === 'M') continue;
    const key = `${e.pid}/${e.tid}`;
    const stack = stacks.get(key) ?? [];
    stacks.set(key, stack);
    expect(e.ts!).toBeGreaterThanOrEqual(lastTs.get(key) ?? 0);
    lastTs.set(key, e.ts!);
    if (e.ph === 'B') stack.push(e.name);
    else if (e.ph === 'E') expect(stack.pop()).toBe(e.name);
    else seen.set(stack.join(' > '), (seen.get(stack.join(' > ')) ?? 0) + 1);
  }
  for (const st of stacks.values()) expect(st).toEqual([]);
  // The function tracer alone: every call goes through its own trampoline, straight to its callback.
  expect([...seen]).toEqual([['ftrace_trampoline[tracer] > function_trace_call > trace_log_event', view.length]]);
});

test('a gap of more than 2^27 ns between two events of a CPU: a time extend in the recording, and trace-cmd still agrees with the view', async () => {
  // Between the two function tracer events, a counter on every function writes 140,008 events (µs on the trace clock).
  const r = await record('tests/fixtures/long-gap.yaml', { traceEntries: 1 << 18 });
  const lines = expectReportMatchesView(r);
  expect(lines.map((l) => l.fn)).toEqual(['vfs_read', 'vfs_read']);
  expect(r.timeExtends).toBe(1);
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

test('the trace-event schema refuses what viewers cannot read', () => {
  expect(validate({ traceEvents: [{ name: 'f', ph: 'i', s: 't', ts: 1, pid: 1, tid: 1 }] })).toBe(true);
  const bad = [
    { traceEvents: [{ name: 'f', ph: 'i', ts: 1, pid: 1, tid: 1 }] }, // an instant without its scope
    { traceEvents: [{ name: 'f', ph: 'X', ts: 1, pid: 1, tid: 1 }] }, // a complete event without a duration
    { traceEvents: [{ name: 'f', ph: 'i', s: 't', ts: '1', pid: 1, tid: 1 }] }, // a time as text
    { traceEvents: [{ name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: {} }] }, // a name without the name
    { traceEvents: [{ name: 'f', ph: 'B', pid: 1, tid: 1 }] }, // no time
    { events: [] },
  ];
  for (const b of bad) expect(validate(b)).toBe(false);
});

test('ftrace-sim record: writes the file trace-cmd reads and says what it wrote', () => {
  const file = join(dir, 'cli.dat');
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ftrace-sim.js'), 'record', 'two-static-ops', '-o', file, '--cpus', '2', '--seed', '3', '--json'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const doc = JSON.parse(r.stdout) as { events: number; cpus: number; seed: number; pagesPerCpu: number[] };
  expect(doc).toMatchObject({ cpus: 2, seed: 3 });
  expect(doc.pagesPerCpu).toHaveLength(2);
  expect(reportLines(traceCmd('report', '-O', 'parent=1', '-O', 'indent=0', '-i', file))).toHaveLength(doc.events);
});
