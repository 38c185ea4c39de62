// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reading the trace ring buffer the guest callbacks write (callbacks.S):
 * fixed-size entries indexed by a global event sequence number, each stamped
 * with its CPU's trace clock by the guest as it was written. An entry whose
 * stored sequence number is not the one expected at its slot has been
 * overwritten by a later lap of the ring.
 */
import type { GuestMemory } from '../../emu/index.js';
import { CALLBACK_KIND, KIND_GRAPH_RETURN, TRACE_ENTRY, type CallbackName } from '../abi.js';
import type { DataLayout, RangeAllocator } from '../allocator.js';
import type { Kernel } from '../kernel.js';

/** The ring buffer's variables in kernel data: the next sequence number, the index mask, the buffer. */
export function placeRingBuffer(l: DataLayout): void {
  l.place('trace_seq', 8, 64);
  l.place('trace_mask', 8);
  l.place('trace_buf', 8);
}

/** Allocates `entries` entries (a power of two) with kmalloc and publishes them to the guest. */
export function initRingBuffer(m: GuestMemory, kmalloc: RangeAllocator, sym: (name: string) => bigint, entries: number): void {
  const buf = kmalloc.alloc(entries * TRACE_ENTRY.SIZE);
  if (buf === undefined) throw new Error('no room for the trace buffer in the direct map');
  m.writeU64(sym('trace_buf'), buf);
  m.writeU64(sym('trace_mask'), BigInt(entries - 1));
}

export interface TraceEvent {
  /** 1-based event number across all CPUs. */
  seq: bigint;
  ip: bigint;
  parentIp: bigint;
  /** What the callback received in %rdx. */
  op: bigint;
  /** What the callback received in %rcx (pt_regs *, or 0). */
  regs: bigint;
  callback: CallbackName | undefined;
  cpu: number;
  /** The task that was current on that CPU (its per-CPU current pid). */
  pid: number;
  /** function_graph: which of its two events this is (depth in regs, calltime in aux0, rettime in aux1). */
  graph: 'entry' | 'return' | undefined;
  /**
   * The trace clock's value for the event, as the guest stamped it: the
   * writing CPU's guest instruction count (trace_clock_local(), the
   * InstructionClock), a raw count like the kernel's "counter" clock, not ns.
   * Strictly increasing per CPU; CPUs count separately. Everything that
   * prints a time takes it from here (through traceClockNs). The clock starts
   * with the first function or function_graph tracer: entries written before
   * (by counting probes or kprobes alone) carry 0.
   */
  ts: bigint;
  /** kprobe_regs: regs->ip and regs->di. */
  aux0: bigint;
  aux1: bigint;
}

/** What the `trace` file's header and `trace_clock` say the clock is. */
export const TRACE_CLOCK_NAME = 'counter';
export const TRACE_CLOCK_HEADER = '# trace clock: counter (guest instructions run by each CPU; TIMESTAMP shows one as 1 us)';

/**
 * The trace clock, in nanoseconds: the one definition every view of the
 * trace uses (the tracefs `trace` file, trace.dat, Chrome JSON). A count has
 * no unit, so each guest instruction is shown as 1 µs: the `trace` file's
 * seconds.microseconds and Chrome's µs then show the exact count.
 */
export function traceClockNs(e: Pick<TraceEvent, 'ts'>): bigint {
  return e.ts * 1000n;
}

const KIND_NAMES = new Map<number, CallbackName>(Object.entries(CALLBACK_KIND).map(([k, v]) => [v, k as CallbackName]));
KIND_NAMES.set(KIND_GRAPH_RETURN, 'function_graph');

export class TraceBuffer {
  constructor(private readonly kernel: Kernel) {}

  /** Events written so far (trace_seq). */
  get written(): bigint {
    return this.kernel.memory.readU64(this.kernel.sym('trace_seq'));
  }

  get capacity(): number {
    return Number(this.kernel.memory.readU64(this.kernel.sym('trace_mask'))) + 1;
  }

  /**
   * Events with from < seq <= to that are still in the ring; how many were
   * overwritten by a later lap (lost), and how many are still being written
   * by a CPU that took the sequence number but has not finished (pending).
   * With `only`, just the events that callback wrote.
   */
  read(from: bigint, to: bigint = this.written, only?: CallbackName): { events: TraceEvent[]; lost: number; pending: number } {
    const m = this.kernel.memory;
    const base = m.readU64(this.kernel.sym('trace_buf'));
    const cap = BigInt(this.capacity);
    const first = to - from > cap ? to - cap : from;
    const events: TraceEvent[] = [];
    let lost = Number(first - from);
    let pending = 0;
    // The slots of first+1..to, in order, copied out in at most two pieces (the ring wraps once).
    const n = Number(to - first);
    const size = TRACE_ENTRY.SIZE;
    const startSlot = Number(first % cap);
    const head = Math.min(n, Number(cap) - startSlot);
    const bytes = new Uint8Array(n * size);
    if (n > 0) bytes.set(m.read(base + BigInt(startSlot * size), head * size), 0);
    if (n > head) bytes.set(m.read(base, (n - head) * size), head * size);
    const v = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      const s = first + 1n + BigInt(i);
      const o = i * size;
      const stored = v.getBigUint64(o + TRACE_ENTRY.SEQ, true);
      if (stored !== s) {
        if (stored > s) lost++;
        else pending++;
        continue;
      }
      const kind = v.getUint16(o + TRACE_ENTRY.KIND, true);
      if (only !== undefined && KIND_NAMES.get(kind) !== only) continue;
      events.push({
        seq: s,
        graph: kind === CALLBACK_KIND.function_graph ? 'entry' : kind === KIND_GRAPH_RETURN ? 'return' : undefined,
        ip: v.getBigUint64(o + TRACE_ENTRY.IP, true),
        parentIp: v.getBigUint64(o + TRACE_ENTRY.PARENT_IP, true),
        op: v.getBigUint64(o + TRACE_ENTRY.OP, true),
        regs: v.getBigUint64(o + TRACE_ENTRY.REGS, true),
        callback: KIND_NAMES.get(kind),
        cpu: v.getUint16(o + TRACE_ENTRY.CPU, true),
        pid: v.getUint32(o + TRACE_ENTRY.PID, true),
        ts: v.getBigUint64(o + TRACE_ENTRY.TS, true),
        aux0: v.getBigUint64(o + TRACE_ENTRY.AUX0, true),
        aux1: v.getBigUint64(o + TRACE_ENTRY.AUX1, true),
      });
    }
    return { events, lost, pending };
  }
}

/** A function_graph event's depth (curr_ret_stack when it was written). */
export function graphDepth(e: TraceEvent): number {
  return Number(BigInt.asIntN(32, e.regs & 0xffff_ffffn));
}

/** The pid of the task a function_graph event was written for. */
export function graphPid(e: TraceEvent): number {
  return Number(e.regs >> 32n);
}
