// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What a recording takes from a running model kernel, all of it read from
 * guest memory or the kernel's own tables: the function tracer's events in
 * the guest ring buffer, kallsyms (trampolines included) and saved_cmdlines.
 * The writers (trace-dat.ts, chrome.ts) take it from here.
 */
import { KERNEL_DATA, MODULES_SIZE, MODULES_VADDR } from '../abi.js';
import type { Kernel } from '../kernel.js';
import { traceClockNs, type TraceEvent } from '../trace/ring-buffer.js';
import { functionTraceEvents } from '../views/tracefs.js';
import type { FunctionEventRecord, KallsymsEntry, TraceDatInput } from './trace-dat.js';

export interface CapturedTrace {
  cpus: number;
  /** The function tracer's events still in the ring, oldest first. */
  events: TraceEvent[];
  /** Events overwritten by a later lap of the ring. */
  lost: number;
  kallsyms: KallsymsEntry[];
  cmdlines: Map<number, string>;
  /** %ps of an address, as the trace view prints it. */
  symbolName: (address: bigint) => string | undefined;
}

/** Module space holds the trampolines; the kernel shows them as the pseudo-module __builtin__ftrace. */
const FTRACE_PSEUDO_MODULE = '__builtin__ftrace';

export function kallsyms(kernel: Kernel): KallsymsEntry[] {
  return kernel.symbols.all().map((s) => {
    if (s.address >= MODULES_VADDR && s.address < MODULES_VADDR + BigInt(MODULES_SIZE)) {
      return { address: s.address, type: 't', name: s.name, module: FTRACE_PSEUDO_MODULE };
    }
    return { address: s.address, type: s.address >= KERNEL_DATA && s.address < kernel.dataEnd ? 'D' : 'T', name: s.name };
  });
}

export function captureTrace(kernel: Kernel): CapturedTrace {
  const { events, lost } = functionTraceEvents(kernel);
  const cmdlines = new Map<number, string>();
  for (const e of events) cmdlines.set(e.pid, kernel.taskComm(e.pid));
  for (const [pid, comm] of kernel.savedCmdlines) cmdlines.set(pid, comm);
  return {
    cpus: kernel.config.cpus,
    events,
    lost,
    kallsyms: kallsyms(kernel),
    cmdlines,
    symbolName: (a) => kernel.symbols.format(a, { short: true }),
  };
}

export function functionEventRecord(e: TraceEvent): FunctionEventRecord {
  return { tsNs: traceClockNs(e), cpu: e.cpu, pid: e.pid, ip: e.ip, parentIp: e.parentIp };
}

export function traceDatInput(t: CapturedTrace): TraceDatInput {
  return { cpus: t.cpus, events: t.events.map(functionEventRecord), kallsyms: t.kallsyms, cmdlines: t.cmdlines };
}
