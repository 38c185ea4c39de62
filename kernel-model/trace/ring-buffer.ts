// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reading the trace ring buffer the guest callbacks write (callbacks.S):
 * 64-byte entries indexed by a global event sequence number. An entry whose
 * stored sequence number is not the one expected at its slot has been
 * overwritten by a later lap of the ring.
 */
import type { GuestMemory } from '../../emu/index.js';
import { CALLBACK_KIND, TRACE_ENTRY, type CallbackName } from '../abi.js';
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
  /** The pid of the task that was running the traced call. */
  pid: number;
  /**
   * The trace clock's value for the event: the kernel's "counter" clock
   * (trace_clock_counter(), one atomic counter across CPUs, not in ns), which
   * is the event's sequence number here. Everything that prints a time
   * takes it from here.
   */
  ts: bigint;
  /** kprobe_regs: regs->ip and regs->di. */
  aux0: bigint;
  aux1: bigint;
}

const KIND_NAMES = new Map<number, CallbackName>(Object.entries(CALLBACK_KIND).map(([k, v]) => [v, k as CallbackName]));

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
   */
  read(from: bigint, to: bigint = this.written): { events: TraceEvent[]; lost: number; pending: number } {
    const m = this.kernel.memory;
    const base = m.readU64(this.kernel.sym('trace_buf'));
    const cap = BigInt(this.capacity);
    const first = to - from > cap ? to - cap : from;
    const events: TraceEvent[] = [];
    let lost = Number(first - from);
    let pending = 0;
    for (let s = first + 1n; s <= to; s++) {
      const e = base + ((s - 1n) % cap) * BigInt(TRACE_ENTRY.SIZE);
      const stored = m.readU64(e + BigInt(TRACE_ENTRY.SEQ));
      if (stored !== s) {
        if (stored > s) lost++;
        else pending++;
        continue;
      }
      events.push({
        seq: s,
        ip: m.readU64(e + BigInt(TRACE_ENTRY.IP)),
        parentIp: m.readU64(e + BigInt(TRACE_ENTRY.PARENT_IP)),
        op: m.readU64(e + BigInt(TRACE_ENTRY.OP)),
        regs: m.readU64(e + BigInt(TRACE_ENTRY.REGS)),
        callback: KIND_NAMES.get(m.readU16(e + BigInt(TRACE_ENTRY.KIND))),
        cpu: m.readU16(e + BigInt(TRACE_ENTRY.CPU)),
        pid: m.readU32(e + BigInt(TRACE_ENTRY.PID)),
        ts: s,
        aux0: m.readU64(e + BigInt(TRACE_ENTRY.AUX0)),
        aux1: m.readU64(e + BigInt(TRACE_ENTRY.AUX1)),
      });
    }
    return { events, lost, pending };
  }
}
