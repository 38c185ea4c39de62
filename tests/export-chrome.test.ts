// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Chrome trace-event JSON: valid against a schema of the format, one track
 * per CPU and per task, and the trace view's events at their trace-clock
 * times in microseconds.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { startBackgroundCpus, type BackgroundCpus } from '../kernel-model/background-cpus.js';
import { captureTrace } from '../kernel-model/export/capture.js';
import { chromeTrace, cpuProcessId, type ChromeTrace } from '../kernel-model/export/chrome.js';
import { FtraceInternals } from '../kernel-model/export/internals.js';
import { traceFile } from '../kernel-model/tracefs.js';
import { resolveScenario } from '../scenarios/engine/catalog.js';
import { loadScenarioFile } from '../scenarios/engine/load.js';
import { inspectScenario } from '../scenarios/engine/run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = JSON.parse(readFileSync(join(root, 'tests', 'fixtures', 'trace-event.schema.json'), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(schema);

async function record(name: string, cpus: number, seed = 1): Promise<{ doc: ChromeTrace; view: string }> {
  const s = loadScenarioFile(resolveScenario(name)!, name);
  let bg: BackgroundCpus | undefined;
  let out: { doc: ChromeTrace; view: string } | undefined;
  await inspectScenario(
    s,
    undefined,
    ({ kernel }) => {
      bg?.finish();
      // Through JSON and back, as a viewer gets it.
      out = { doc: JSON.parse(JSON.stringify(chromeTrace(captureTrace(kernel), { scenario: name }))) as ChromeTrace, view: traceFile(kernel) };
    },
    cpus > 1 ? { kernelConfig: { cpus }, onBoot: (k) => ((bg = startBackgroundCpus(k, seed)), bg.afterStep) } : {},
  );
  return out!;
}

/** The view's events: task, CPU, time in µs, function. */
function viewEvents(view: string) {
  return view
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^\s*(\S+)-(\d+)\s+\[(\d+)\] \.{4}\s+(\d+)\.(\d{6}): (\S+)(?: <-(\S+))?$/.exec(l)!;
      return { thread: `${m[1]}-${m[2]}`, tid: Number(m[2]), cpu: Number(m[3]), ts: Number(m[4]) * 1e6 + Number(m[5]), name: m[6], parent: m[7] ?? '' };
    });
}

function checkAgainstView(doc: ChromeTrace, view: string) {
  expect(validate(doc)).toBe(true);
  expect(validate.errors ?? []).toEqual([]);
  const threadNames = new Map(doc.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}/${e.tid}`, e.args!.name]));
  const instants = doc.traceEvents.filter((e) => e.ph === 'i');
  const want = viewEvents(view);
  expect(instants.map((e) => ({ thread: threadNames.get(`${e.pid}/${e.tid}`), tid: e.tid, cpu: e.pid - 1, ts: e.ts, name: e.name, parent: e.args!.parent }))).toEqual(want);
  return want;
}

test('function-tracer: the Chrome JSON passes the trace-event schema and holds the trace view\'s events at their µs times', async () => {
  const { doc, view } = await record('function-tracer', 1);
  const events = checkAgainstView(doc, view);
  expect(events.length).toBeGreaterThan(100);
  expect(doc.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.args!.name)).toEqual(['CPU 0']);
});

test('three CPUs: a track per CPU and per task that ran on it', async () => {
  const { doc, view } = await record('function-tracer', 3, 5);
  const events = checkAgainstView(doc, view);
  const processes = doc.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name');
  expect(processes.map((e) => [e.pid, e.args!.name])).toEqual([0, 1, 2].map((c) => [cpuProcessId(c), `CPU ${c}`]));
  const threads = doc.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name');
  expect(new Set(threads.map((e) => `${e.pid}/${e.tid}`)).size).toBe(threads.length);
  expect(new Set(threads.map((e) => `${e.pid}/${e.tid}`))).toEqual(new Set(events.map((e) => `${cpuProcessId(e.cpu)}/${e.tid}`)));
  expect(threads.length).toBeGreaterThanOrEqual(5); // CPU 0's task and two tasks on each other CPU
});

test('the schema refuses what viewers cannot read', () => {
  const ok = { traceEvents: [{ name: 'f', ph: 'i', s: 't', ts: 1, pid: 1, tid: 1 }] };
  expect(validate(ok)).toBe(true);
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

test('--ftrace-internals: balanced, nested B/E slices, and each event inside the callback that wrote it, under its trampoline', async () => {
  const s = loadScenarioFile(resolveScenario('function-tracer')!, 'function-tracer');
  let rec: FtraceInternals | undefined;
  let doc: ChromeTrace | undefined;
  await inspectScenario(
    s,
    undefined,
    ({ kernel }) => {
      rec!.finish();
      doc = JSON.parse(JSON.stringify(chromeTrace(captureTrace(kernel), {}, rec!.edges))) as ChromeTrace;
    },
    { onBoot: (k) => void (rec = new FtraceInternals(k)).attach() },
  );
  expect(validate(doc)).toBe(true);
  const stacks = new Map<string, string[]>();
  const lastTs = new Map<string, number>();
  const seen = new Map<string, number>();
  let instants = 0;
  for (const e of doc!.traceEvents) {
    if (e.ph === 'M') continue;
    const key = `${e.pid}/${e.tid}`;
    const stack = stacks.get(key) ?? [];
    stacks.set(key, stack);
    expect(e.ts!).toBeGreaterThanOrEqual(lastTs.get(key) ?? 0);
    lastTs.set(key, e.ts!);
    if (e.ph === 'B') stack.push(e.name);
    else if (e.ph === 'E') expect(stack.pop()).toBe(e.name);
    else {
      instants++;
      const where = stack.join(' > ');
      seen.set(where, (seen.get(where) ?? 0) + 1);
    }
  }
  for (const st of stacks.values()) expect(st).toEqual([]);
  // The function tracer alone: every call goes through its own trampoline, straight to its callback.
  expect([...seen]).toEqual([['ftrace_trampoline[tracer] > function_trace_call > trace_log_event', instants]]);
  expect(instants).toBeGreaterThan(100);
});
