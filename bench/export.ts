// SPDX-License-Identifier: GPL-2.0-or-later
/* The trace writers' speed: trace.dat pages and Chrome JSON for many function events. */
import { chromeTrace } from '../kernel-model/export/chrome.js';
import { traceDatInput, type CapturedTrace } from '../kernel-model/export/capture.js';
import { writeTraceDat } from '../kernel-model/export/trace-dat.js';
import type { TraceEvent } from '../kernel-model/trace/ring-buffer.js';
import { bestNs } from './machine.js';

export interface ExportRow {
  format: string;
  events: number;
  ms: number;
  mEventsPerSecond: number;
}

/** A four-CPU trace of `n` events, as captureTrace would hand it over, written in each format. */
export function benchExport(n: number, repeats: number): ExportRow[] {
  const events: TraceEvent[] = Array.from({ length: n }, (_x, i) => ({
    seq: BigInt(i + 1),
    ts: BigInt(i + 1),
    graph: undefined,
    ip: 0xffffffff81000000n + BigInt(i % 97) * 16n,
    parentIp: 0xffffffff81001000n,
    op: 0xffffffff83002000n,
    regs: 0n,
    callback: 'function_trace',
    cpu: i % 4,
    pid: 100 + (i % 4),
    aux0: 0n,
    aux1: 0n,
  }));
  const t: CapturedTrace = { cpus: 4, events, lost: 0, kallsyms: [], cmdlines: new Map(), symbolName: (a) => `f_${a.toString(16)}` };
  const row = (format: string, ns: number): ExportRow => ({ format, events: n, ms: Math.round(ns / 1e5) / 10, mEventsPerSecond: Math.round((n / (ns / 1e9) / 1e6) * 100) / 100 });
  return [
    row('trace.dat (v6)', bestNs(repeats, () => void writeTraceDat(traceDatInput(t)))),
    row('Chrome JSON', bestNs(repeats, () => void JSON.stringify(chromeTrace(t)))),
  ];
}
