// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The function graph tracer's tracefs files, from guest memory: `trace` in
 * the function_graph format of kernel/trace/trace_functions_graph.c (v3.18,
 * default options: CPU, overhead marks and durations; no process column),
 * and set_graph_function, set_graph_notrace and max_graph_depth. The clock
 * is the guest instruction clock: one guest instruction prints as 1 ns.
 */
import { hex } from '../../emu/index.js';
import type { Kernel } from '../kernel.js';
import { TraceBuffer, graphDepth, graphPid, type TraceEvent } from '../trace/ring-buffer.js';
import { readGuestHash } from './tracefs.js';

export const GRAPH_TRACEFS_FILES = ['set_graph_function', 'set_graph_notrace', 'max_graph_depth'] as const;
export type GraphTracefsFile = (typeof GRAPH_TRACEFS_FILES)[number];

/** TRACE_GRAPH_INDENT */
const INDENT = 2;

/** trace_print_graph_duration(): `<usecs>.<nsecs> us ` padded to a fixed column. */
export function formatGraphDuration(duration: bigint): string {
  const usecs = String(duration / 1000n);
  const nsecsRem = duration % 1000n;
  let out = usecs;
  let len = usecs.length;
  if (len < 7) {
    // snprintf(nsecs_str, min(sizeof(nsecs_str), 8 - len), "%03lu", nsecs_rem)
    const slen = Math.min(5, 8 - len);
    const nsecs = String(nsecsRem).padStart(3, '0').slice(0, slen - 1);
    out += '.' + nsecs;
    len += nsecs.length;
  }
  out += ' us ';
  for (let i = len; i < 7; i++) out += ' ';
  return out;
}

/** print_graph_duration() with TRACE_GRAPH_PRINT_OVERHEAD: the mark, the duration, the bar. */
export function graphDurationColumn(duration: bigint): string {
  const mark = duration > 100000n ? '! ' : duration > 10000n ? '+ ' : '  ';
  return mark + formatGraphDuration(duration) + '|  ';
}

/** FLAGS_FILL_FULL: an entry with no duration of its own. */
const NO_DURATION = '              |  ';

/** __print_graph_headers_flags() with TRACE_GRAPH_PRINT_CPU and TRACE_GRAPH_PRINT_DURATION. */
export const GRAPH_HEADER = ['# CPU  DURATION                  FUNCTION CALLS', '# |     |   |                     |   |   |   |'];

const depthOf = graphDepth;

/** The comm every model task has; the kernel prints at most 7 characters of it here. */
const COMM = 'ftrace-sim';

/** print_graph_proc(): `comm-pid` centred in TRACE_GRAPH_PROCINFO_LENGTH (14) columns. */
export function graphProc(pid: number): string {
  const text = `${COMM.slice(0, 7)}-${pid}`;
  const spaces = Math.max(14 - text.length, 0);
  return ' '.repeat(Math.floor(spaces / 2)) + text + ' '.repeat(spaces - Math.floor(spaces / 2));
}

/**
 * The trace file with current_tracer = function_graph. A call whose return
 * is the next event on its CPU prints as a leaf (`f();` with its duration);
 * otherwise `f() {` opens it and its return prints `}` with the duration.
 */
export function graphTraceFile(kernel: Kernel, cpus = kernel.config.cpus): string {
  const { events } = new TraceBuffer(kernel).read(0n);
  const graph = events.filter((e) => e.callback === 'function_graph' && e.graph);
  const cpuWidth = String(Math.max(cpus - 1, 0)).length;
  const ps = (a: bigint) => kernel.symbols.format(a, { short: true })?.split('+')[0] ?? hex(a);
  const lines = ['# tracer: function_graph', '#', ...GRAPH_HEADER];
  // The function entered at each depth, per CPU (fgraph_cpu_data.enter_funcs).
  const enterFuncs = new Map<number, bigint[]>();
  const nextOnCpu = new Map<TraceEvent, TraceEvent>();
  const last = new Map<number, TraceEvent>();
  for (const e of graph) {
    const prev = last.get(e.cpu);
    if (prev) nextOnCpu.set(prev, e);
    last.set(e.cpu, e);
  }
  const skip = new Set<TraceEvent>();
  const lastPid = new Map<number, number>();
  for (const e of graph) {
    if (skip.has(e)) continue;
    const depth = Math.max(depthOf(e), 0);
    const cpu = ` ${String(e.cpu).padStart(cpuWidth)}) `;
    // verif_pid(): another task on this CPU since its last line.
    const pid = graphPid(e);
    const prevPid = lastPid.get(e.cpu);
    lastPid.set(e.cpu, pid);
    if (prevPid !== undefined && prevPid !== pid) {
      lines.push(' ------------------------------------------', `${cpu}${graphProc(prevPid)} => ${graphProc(pid)}`, ' ------------------------------------------', '');
    }
    const indent = ' '.repeat(depth * INDENT);
    const funcs = enterFuncs.get(e.cpu) ?? [];
    enterFuncs.set(e.cpu, funcs);
    if (e.graph === 'entry') {
      const next = nextOnCpu.get(e);
      if (next && next.graph === 'return' && next.ip === e.ip && graphPid(next) === pid && depthOf(next) === depthOf(e)) {
        skip.add(next);
        funcs[depth] = 0n;
        lines.push(`${cpu}${graphDurationColumn(next.aux1 - next.aux0)}${indent}${ps(e.ip)}();`);
      } else {
        funcs[depth] = e.ip;
        lines.push(`${cpu}${NO_DURATION}${indent}${ps(e.ip)}() {`);
      }
    } else {
      // A return whose entry was not seen names its function.
      const matched = funcs[depth] === e.ip;
      funcs[depth] = 0n;
      lines.push(`${cpu}${graphDurationColumn(e.aux1 - e.aux0)}${indent}${matched ? '}' : `} /* ${ps(e.ip)} */`}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Whether the trace buffer holds function_graph events: then `trace` is in its format. */
export function hasGraphEvents(kernel: Kernel): boolean {
  return new TraceBuffer(kernel).read(0n).events.some((e) => e.callback === 'function_graph');
}

/** set_graph_function / set_graph_notrace (from the guest hashes) and max_graph_depth. */
export function graphTracefsFile(kernel: Kernel, file: GraphTracefsFile): string {
  if (file === 'max_graph_depth') return `${kernel.memory.readU64(kernel.sym('fgraph_max_depth'))}\n`;
  const hash = kernel.memory.readU64(kernel.sym(file === 'set_graph_function' ? 'ftrace_graph_hash' : 'ftrace_graph_notrace_hash'));
  const ips = readGuestHash(kernel, hash);
  if (ips.length === 0) return file === 'set_graph_function' ? '#### all functions enabled ####\n' : '#### no functions disabled ####\n';
  return ips.map((ip) => (kernel.symbols.format(ip, { short: true })?.split('+')[0] ?? hex(ip)) + '\n').join('');
}

