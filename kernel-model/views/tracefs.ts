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
import { eraRules } from '../ftrace/era.js';
import type { DynFtrace } from '../ftrace/records.js';
import type { FtraceOps } from '../ftrace/ops.js';
import type { Kernel } from '../kernel.js';
import { TRACE_CLOCK_HEADER, TRACE_CLOCK_NAME, TraceBuffer, traceClockNs, type TraceEvent } from '../trace/ring-buffer.js';

export const TRACEFS_FILES = ['available_filter_functions', 'enabled_functions', 'set_ftrace_filter', 'set_ftrace_notrace', 'trace', 'trace_clock'] as const;
export type TracefsFile = (typeof TRACEFS_FILES)[number];

function ps(kernel: Kernel, a: bigint): string {
  return kernel.symbols.format(a, { short: true }) ?? hex(a);
}

/** One `%ps` per record, in address order. */
export function availableFilterFunctions(kernel: Kernel, ftrace: Ftrace): string {
  return ftrace.records.all().map((r) => ps(kernel, r.ip) + '\n').join('');
}

/**
 * `%pS`: `name+0xoff/0xsize` for kernel text; a bare `0x…` for anything
 * kallsyms cannot name. Trampolines are among those in every era: %pS goes
 * through kallsyms_lookup(), which does not know them (v5.9+ lists them in
 * /proc/kallsyms as ftrace_trampoline [__builtin__ftrace], but only there).
 */
export function pS(kernel: Kernel, ftrace: Ftrace, a: bigint): string {
  const inTrampoline = ftrace.allOps().some((o) => o.trampoline !== 0n && a >= o.trampoline && a < o.trampoline + BigInt(o.trampolineSize));
  const named = inTrampoline ? undefined : kernel.symbols.format(a, { withSize: true });
  return named ?? hex(a);
}

/** The ops whose trampoline a TRAMP_EN record calls (ftrace_find_tramp_ops_curr's answer, read from the site). */
function trampOps(ftrace: Ftrace, rec: DynFtrace): FtraceOps | undefined {
  const site = ftrace.siteTarget(rec);
  return site.kind === 'trampoline' ? ftrace.ops(site.ops) : undefined;
}

/**
 * enabled_functions, as the era's t_show() prints it:
 *  - v3.18: `%ps (%ld)` and `" R"` (FTRACE_FL_REGS, wanted, not REGS_EN);
 *    a TRAMP_EN record adds `\ttramp: %pS` of the trampoline;
 *  - modern (v5.5–6.2): ` (%ld)%s%s%s` for R, I (IPMODIFY) and D (direct,
 *    never here); a TRAMP_EN record adds `\ttramp: %pS (%pS)` of the
 *    trampoline and ops->func; then add_trampoline_func()'s ` ->%pS`: what
 *    the trampoline's call calls, or for a shared caller what ftrace_call
 *    (ftrace_regs_call) calls (x86 static_tramp_func()).
 */
export function enabledFunctions(kernel: Kernel, ftrace: Ftrace): string {
  const modern = eraRules(kernel.config.era).enabledFunctions === 'modern';
  const target = (a: bigint | undefined) => (a !== undefined ? ` ->${pS(kernel, ftrace, a)}` : '');
  let out = '';
  for (const rec of ftrace.records.all()) {
    const flags = rec.flags;
    if (!(flags & FTRACE_FL.ENABLED)) continue;
    out += `${ps(kernel, rec.ip)} (${rec.count})${flags & FTRACE_FL.REGS ? ' R' : '  '}`;
    if (modern) out += `${flags & FTRACE_FL.IPMODIFY ? ' I' : '  '}  `;
    if (flags & FTRACE_FL.TRAMP_EN) {
      const ops = trampOps(ftrace, rec);
      if (!ops) out += '\ttramp: ERROR!';
      else if (!modern) out += `\ttramp: ${pS(kernel, ftrace, ops.trampoline)}`;
      else out += `\ttramp: ${pS(kernel, ftrace, ops.trampoline)} (${pS(kernel, ftrace, ops.func)})${target(ftrace.arch.trampolineCallTarget(ops))}`;
    } else if (modern) {
      out += target(ftrace.arch.ftraceCallTarget((flags & FTRACE_FL.REGS_EN) !== 0));
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

const HEADER_318 = [
  '#                              _-----=> irqs-off',
  '#                             / _----=> need-resched',
  '#                            | / _---=> hardirq/softirq',
  '#                            || / _--=> preempt-depth',
  '#                            ||| /     delay',
  '#           TASK-PID   CPU#  ||||    TIMESTAMP  FUNCTION',
  '#              | |       |   ||||       |         |',
];
/* print_func_help_header_irq() of v5.17+, with prec = 2 (no tgid column). */
const HEADER_MODERN = [
  '#                                _-----=> irqs-off/BH-disabled',
  '#                               / _----=> need-resched',
  '#                              | / _---=> hardirq/softirq',
  '#                              || / _--=> preempt-depth',
  '#                              ||| / _-=> migrate-disable',
  '#                              |||| /     delay',
  '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
  '#              | |         |   |||||     |         |',
];

/**
 * The function tracer's events in the ring buffer, and how many were lost,
 * merged across CPUs as the kernel's trace iterator does: the smallest
 * timestamp first, the lower CPU on a tie (each CPU's clock is its own).
 */
export function functionTraceEvents(kernel: Kernel): { events: TraceEvent[]; lost: number } {
  const { events, lost } = new TraceBuffer(kernel).read(0n, undefined, 'function_trace');
  events.sort((a, b) => (a.ts !== b.ts ? (a.ts < b.ts ? -1 : 1) : a.cpu - b.cpu || (a.seq < b.seq ? -1 : 1)));
  return { events, lost };
}

/** `trace_clock`: the clocks there are, the one in use in brackets; the model has one. */
export function traceClockFile(): string {
  return `[${TRACE_CLOCK_NAME}]\n`;
}

/**
 * One event's context as trace_print_context() prints it: comm-pid, CPU,
 * the latency flags and the time, in seconds.microseconds of the trace clock
 * (traceClockNs), which trace.dat records too. The flags are all `.`: the
 * model has no interrupts.
 */
export function traceContext(kernel: Kernel, e: TraceEvent): string {
  const modern = eraRules(kernel.config.era).enabledFunctions === 'modern';
  const pidWidth = eraRules(kernel.config.era).tracePidWidth;
  const comm = kernel.taskComm(e.pid).padStart(16);
  const lat = modern ? '.....' : '....';
  const us = traceClockNs(e) / 1000n;
  const ts = `${String(us / 1000000n).padStart(5)}.${String(us % 1000000n).padStart(6, '0')}`;
  return `${comm}-${String(e.pid).padEnd(pidWidth)} [${String(e.cpu).padStart(3, '0')}] ${lat} ${ts}: `;
}

/**
 * The function tracer's `trace` file, in the era's format (irq-info on):
 * each event's own task, pid and CPU, the number of CPUs, and the trace
 * clock's raw values. A killed ftrace adds test_ftrace_alive()'s warning.
 */
export function traceFile(kernel: Kernel, ftrace?: Ftrace): string {
  const { events: fn, lost } = functionTraceEvents(kernel);
  const modern = eraRules(kernel.config.era).enabledFunctions === 'modern';
  const lines = ['# tracer: function', TRACE_CLOCK_HEADER, '#'];
  if (ftrace?.disabled) lines.push('# WARNING: FUNCTION TRACING IS CORRUPTED', '#          MAY BE MISSING FUNCTION EVENTS');
  lines.push(`# entries-in-buffer/entries-written: ${fn.length}/${fn.length + lost}   #P:${kernel.config.cpus}`, '#', ...(modern ? HEADER_MODERN : HEADER_318));
  for (const e of fn) {
    const parent = e.parentIp !== 0n ? ` <-${ps(kernel, e.parentIp)}` : '';
    lines.push(`${traceContext(kernel, e)}${ps(kernel, e.ip)}${parent}`);
  }
  return lines.join('\n') + '\n';
}
