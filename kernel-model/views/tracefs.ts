// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tracefs files, printed in the kernel's formats from guest memory: the
 * dyn_ftrace records, the call sites' bytes, the ops' hashes as the guest
 * list function walks them, and the trace ring buffer.
 */
import { hex } from '../../emu/index.js';
import { FTRACE_FL, HASH, HASH_ENTRY, OPS } from '../abi.js';
import { KernelDataCorrupted, expectMapped } from '../corruption.js';
import type { Ftrace } from '../ftrace/core.js';
import type { FtraceOps } from '../ftrace/ops.js';
import type { Kernel } from '../kernel.js';
import { TraceBuffer, traceClockNs, type TraceEvent } from '../trace/ring-buffer.js';

export const TRACEFS_FILES = ['available_filter_functions', 'enabled_functions', 'set_ftrace_filter', 'set_ftrace_notrace', 'trace'] as const;
export type TracefsFile = (typeof TRACEFS_FILES)[number];

function ps(kernel: Kernel, a: bigint): string {
  return kernel.symbols.format(a, { short: true }) ?? hex(a);
}

/** One `%ps` per record, in address order. */
export function availableFilterFunctions(kernel: Kernel, ftrace: Ftrace): string {
  return ftrace.records.all().map((r) => ps(kernel, r.ip) + '\n').join('');
}

/**
 * enabled_functions: every ENABLED record with its count and R (regs) flag;
 * a record on a trampoline shows `tramp: <address> (<ops func>)`, and every
 * record ends with `->` the function its path calls.
 */
export function enabledFunctions(kernel: Kernel, ftrace: Ftrace): string {
  let out = '';
  for (const rec of ftrace.records.all()) {
    const flags = rec.flags;
    if (!(flags & FTRACE_FL.ENABLED)) continue;
    out += `${ps(kernel, rec.ip)} (${rec.count})${flags & FTRACE_FL.REGS_EN ? ' R' : '  '}`;
    const site = ftrace.siteTarget(rec);
    const owner = flags & FTRACE_FL.TRAMP_EN && site.kind === 'trampoline' ? ftrace.ops(site.ops) : undefined;
    if (owner) {
      const calls = ftrace.arch.trampolineCallTarget(owner);
      out += `\ttramp: ${hex(owner.trampoline)} (${ps(kernel, owner.func)}) ->${calls !== undefined ? ps(kernel, calls) : '?'}`;
    } else {
      const calls = ftrace.arch.ftraceCallTarget((flags & FTRACE_FL.REGS_EN) !== 0);
      out += ` ->${calls !== undefined ? ps(kernel, calls) : '?'}`;
    }
    out += '\n';
  }
  return out;
}

/** The most buckets ftrace_hash_move() ever sizes a hash with (FTRACE_HASH_MAX_BITS). */
const HASH_MAX_BITS = 12;

/**
 * The ips of a guest struct ftrace_hash, walked bucket by bucket. The walk is
 * bounded by the hash's own count: a hash whose chains hold more entries than
 * it says, or that point outside memory, is reported as corrupted.
 */
export function readGuestHash(kernel: Kernel, hash: bigint): bigint[] {
  if (hash === 0n) return [];
  const m = kernel.memory;
  const what = 'ftrace_hash';
  expectMapped(m, what, hash, HASH.SIZE);
  const bits = m.readU64(hash + BigInt(HASH.SIZE_BITS));
  const count = m.readU64(hash + BigInt(HASH.COUNT));
  const buckets = m.readU64(hash + BigInt(HASH.BUCKETS));
  if (bits > BigInt(HASH_MAX_BITS)) throw new KernelDataCorrupted(what, hash, `size_bits is ${bits}, above ${HASH_MAX_BITS}`);
  const nb = 1 << Number(bits);
  expectMapped(m, `${what} buckets`, buckets, nb * 8);
  const ips: bigint[] = [];
  for (let b = 0; b < nb; b++) {
    for (let e = m.readU64(buckets + BigInt(b * 8)); e !== 0n; e = m.readU64(e + BigInt(HASH_ENTRY.NEXT))) {
      if (BigInt(ips.length) >= count) throw new KernelDataCorrupted(what, hash, `its chains hold more than its count of ${count} entries (a loop?)`);
      expectMapped(m, `${what} entry`, e, HASH_ENTRY.SIZE);
      ips.push(m.readU64(e + BigInt(HASH_ENTRY.IP)));
    }
  }
  return ips.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** set_ftrace_filter / set_ftrace_notrace of one ops, read from its guest hashes. */
export function setFtraceHash(kernel: Kernel, ops: FtraceOps, which: 'filter' | 'notrace'): string {
  const slot = ops.addr + BigInt(which === 'filter' ? OPS.FILTER_HASH : OPS.NOTRACE_HASH);
  const ips = readGuestHash(kernel, kernel.memory.readU64(slot));
  if (ips.length === 0) return which === 'filter' ? '#### all functions enabled ####\n' : '#### no functions disabled ####\n';
  return ips.map((ip) => ps(kernel, ip) + '\n').join('');
}

/** A task's comm as the trace prints it: saved_cmdlines, or `<...>` for a pid not in it. */
export function traceComm(kernel: Kernel, pid: number): string {
  return kernel.savedCmdlines.get(pid) ?? '<...>';
}

/** The function tracer's events in the ring buffer, oldest first, and how many were lost. */
export function functionTraceEvents(kernel: Kernel): { events: TraceEvent[]; lost: number } {
  const { events, lost } = new TraceBuffer(kernel).read(0n, undefined, 'function_trace');
  return { events, lost };
}

/**
 * The function tracer's `trace` file (v3.x format, irq-info on), with each
 * event's CPU and pid as the guest recorded them and its time from the trace
 * clock (traceClockNs).
 */
export function traceFile(kernel: Kernel): string {
  const { events: fn, lost } = functionTraceEvents(kernel);
  const lines = [
    '# tracer: function',
    '#',
    `# entries-in-buffer/entries-written: ${fn.length}/${fn.length + lost}   #P:${kernel.config.cpus}`,
    '#',
    '#                              _-----=> irqs-off',
    '#                             / _----=> need-resched',
    '#                            | / _---=> hardirq/softirq',
    '#                            || / _--=> preempt-depth',
    '#                            ||| /     delay',
    '#           TASK-PID   CPU#  ||||    TIMESTAMP  FUNCTION',
    '#              | |       |   ||||       |         |',
  ];
  for (const e of fn) {
    const us = traceClockNs(e) / 1000n;
    const ts = `${String(us / 1000000n).padStart(5)}.${String(us % 1000000n).padStart(6, '0')}`;
    const head = `${traceComm(kernel, e.pid).padStart(16)}-${String(e.pid).padEnd(5)} [${String(e.cpu).padStart(3, '0')}] ....`;
    const parent = e.parentIp !== 0n ? ` <-${ps(kernel, e.parentIp)}` : '';
    lines.push(`${head} ${ts}: ${ps(kernel, e.ip)}${parent}`);
  }
  return lines.join('\n') + '\n';
}
