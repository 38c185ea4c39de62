// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The trace as Chrome trace-event JSON (the "JSON Object Format" that
 * Perfetto and chrome://tracing open). Each CPU is a process and each task
 * that ran on it a thread of that process, so every CPU and every task has
 * its own track; each function tracer event is an instant on its task's
 * track, at its trace-clock time in microseconds.
 */
import { hex } from '../../emu/hex.js';
import { traceClockNs } from '../trace/ring-buffer.js';
import type { CapturedTrace } from './capture.js';
import type { SliceEdge } from './internals.js';

export type ChromePhase = 'i' | 'M' | 'B' | 'E';

export interface ChromeEvent {
  name: string;
  ph: ChromePhase;
  pid: number;
  tid: number;
  /** Microseconds. Metadata events have none. */
  ts?: number;
  cat?: string;
  /** An instant's scope: 't' (its thread's track). */
  s?: 't';
  args?: Record<string, string | number>;
}

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ns' | 'ms';
  otherData: Record<string, string | number>;
}

/** The Chrome process id of a CPU: process ids must be distinct, and 0 reads as "none" in some viewers. */
export const cpuProcessId = (cpu: number) => cpu + 1;

/**
 * The trace as Chrome JSON; with `internals` (FtraceInternals.edges), ftrace's
 * own work too, as nested B/E slices on the same tracks.
 */
export function chromeTrace(t: CapturedTrace, about: Record<string, string | number> = {}, internals: readonly SliceEdge[] = []): ChromeTrace {
  const meta: ChromeEvent[] = [];
  for (let cpu = 0; cpu < t.cpus; cpu++) {
    meta.push({ name: 'process_name', ph: 'M', pid: cpuProcessId(cpu), tid: 0, args: { name: `CPU ${cpu}` } });
    meta.push({ name: 'process_sort_index', ph: 'M', pid: cpuProcessId(cpu), tid: 0, args: { sort_index: cpu } });
  }
  const tracks = new Set<string>();
  const track = (cpu: number, task: number) => {
    const pid = cpuProcessId(cpu);
    const key = `${pid}/${task}`;
    if (!tracks.has(key)) {
      tracks.add(key);
      meta.push({ name: 'thread_name', ph: 'M', pid, tid: task, args: { name: `${t.cmdlines.get(task) ?? '<...>'}-${task}` } });
    }
    return pid;
  };
  const events: ChromeEvent[] = [];
  // A trace names the same few addresses again and again: each is formatted once.
  const names = new Map<bigint, { name: string; hex: string }>();
  const named = (a: bigint) => {
    let n = names.get(a);
    if (!n) names.set(a, (n = { name: t.symbolName(a) ?? hex(a), hex: hex(a) }));
    return n;
  };
  for (const e of t.events) {
    const pid = track(e.cpu, e.pid);
    const ip = named(e.ip);
    const parent = named(e.parentIp);
    events.push({
      name: ip.name,
      cat: 'function',
      ph: 'i',
      s: 't',
      ts: Number(traceClockNs(e)) / 1000,
      pid,
      tid: e.pid,
      args: { ip: ip.hex, parent: e.parentIp !== 0n ? parent.name : '', parent_ip: parent.hex, event: Number(e.seq) },
    });
  }
  for (const x of internals) events.push({ name: x.name, cat: 'ftrace', ph: x.ph, ts: x.tsNs / 1000, pid: track(x.cpu, x.pid), tid: x.pid });
  // In time order (the events are already); a stable sort keeps each track's edges in the order they happened.
  if (internals.length) events.sort((a, b) => a.ts! - b.ts!);
  return {
    traceEvents: [...meta, ...events],
    displayTimeUnit: 'ns',
    otherData: { source: 'ftrace-sim', tracer: 'function', cpus: t.cpus, lost: t.lost, ...about },
  };
}
