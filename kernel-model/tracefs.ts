// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tracefs files, printed in the kernel's formats from guest memory: the
 * dyn_ftrace records, the call sites' bytes, the ops' hashes as the guest
 * list function walks them, and the trace ring buffer.
 */
import { decodeBranch } from '../asm/encoding.js';
import { FTRACE_FL, HASH, HASH_ENTRY, OPS } from './abi.js';
import type { Ftrace } from './ftrace/core.js';
import type { FtraceOps } from './ftrace/ops.js';
import type { Kernel } from './kernel.js';
import { TraceBuffer, traceClockNs, type TraceEvent } from './trace.js';

export const TRACEFS_FILES = ['available_filter_functions', 'enabled_functions', 'set_ftrace_filter', 'set_ftrace_notrace', 'trace'] as const;
export type TracefsFile = (typeof TRACEFS_FILES)[number];

const hexAddr = (a: bigint) => '0x' + a.toString(16);

function ps(kernel: Kernel, a: bigint): string {
  return kernel.symbols.format(a, { short: true }) ?? hexAddr(a);
}

/** One `%ps` per record, in address order. */
export function availableFilterFunctions(kernel: Kernel, ftrace: Ftrace): string {
  return ftrace.records.all().map((r) => ps(kernel, r.ip) + '\n').join('');
}

/** What the 5-byte call at ip calls, decoded from guest memory. */
function callTarget(kernel: Kernel, ip: bigint): bigint | undefined {
  const b = decodeBranch(ip, kernel.memory.read(ip, 5));
  return b?.kind === 'call' ? b.target : undefined;
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
    const site = callTarget(kernel, rec.ip);
    const owner = flags & FTRACE_FL.TRAMP_EN ? ftrace.allOps().find((o) => o.trampoline !== 0n && o.trampoline === site) : undefined;
    if (owner) {
      const callIp = owner.trampoline + BigInt(ftrace.arch.calc_trampoline_call_offset(owner.hasFlag('SAVE_REGS')));
      const calls = callTarget(kernel, callIp);
      out += `\ttramp: ${hexAddr(owner.trampoline)} (${ps(kernel, owner.func)}) ->${calls !== undefined ? ps(kernel, calls) : '?'}`;
    } else {
      const caller = flags & FTRACE_FL.REGS_EN ? 'ftrace_regs_call' : 'ftrace_call';
      const calls = callTarget(kernel, kernel.sym(caller));
      out += ` ->${calls !== undefined ? ps(kernel, calls) : '?'}`;
    }
    out += '\n';
  }
  return out;
}

/** The ips of a guest struct ftrace_hash, walked bucket by bucket. */
export function readGuestHash(kernel: Kernel, hash: bigint): bigint[] {
  if (hash === 0n) return [];
  const m = kernel.memory;
  const bits = Number(m.readU64(hash + BigInt(HASH.SIZE_BITS)));
  const buckets = m.readU64(hash + BigInt(HASH.BUCKETS));
  const ips: bigint[] = [];
  for (let b = 0; b < 1 << bits; b++) {
    for (let e = m.readU64(buckets + BigInt(b * 8)); e !== 0n; e = m.readU64(e + BigInt(HASH_ENTRY.NEXT))) {
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
