// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest instruction clock behind trace_clock_local(): each CPU counts
 * the guest instructions it has been given to run (a block hook adds each
 * translated block's instruction count as the block starts) and keeps the
 * count in its per-CPU area, where the guest reads it. Deterministic: the
 * same run gives the same clock, unlike any host time source; a duration is
 * the guest instructions between two readings.
 */
import { disassemble, disassemblerReady } from '../../asm/disasm.js';
import { PERCPU, PERCPU_BASE, PERCPU_STRIDE } from '../abi.js';
import type { Machine } from '../machine.js';

/** How many block addresses the clock remembers the instruction counts of. */
const MAX_BLOCKS = 4096;

export class InstructionClock {
  /** Instructions per block, by address and size; dropped where code changes. */
  private readonly blocks = new Map<number | bigint, Map<number, number>>();
  private readonly counts: number[];
  /** Per CPU: the instructions of the block it is running (already in its count). */
  private readonly current: number[];
  private started = false;

  /** For a machine with the per-CPU areas mapped (initDisassembler() awaited before start()). */
  constructor(private readonly machine: Machine) {
    if (!machine.memory.allRegions().some((r) => r.base === PERCPU_BASE)) throw new Error('the instruction clock needs the per-CPU areas mapped');
    this.counts = machine.cpus.map(() => 0);
    this.current = machine.cpus.map(() => 0);
    machine.onSync.push((spans) => this.forget(spans));
  }

  /** Whether the clock is running (it never stops once started). */
  get running(): boolean {
    return this.started;
  }

  /**
   * Starts counting on every CPU, from 0: a block hook per CPU, a JS call per
   * translated block run (about 2.4-3x the host time of a traced call), so it
   * starts when something first needs it: boot with
   * KernelConfig.instructionClock, or the first function or function_graph
   * tracer registered.
   */
  start(): void {
    if (this.started) return;
    // Counting a block's instructions disassembles it: without Capstone every block would count as one.
    if (!disassemblerReady()) throw new Error('the trace clock needs initDisassembler() first (Kernel.assemble does it unless config.traceClock is false)');
    this.started = true;
    const buf = this.machine.memory.allRegions().find((r) => r.base === PERCPU_BASE)!.buffer;
    this.machine.cpus.forEach((engine, cpu) => {
      const at = cpu * PERCPU_STRIDE + PERCPU.TRACE_CLOCK;
      engine.addBlockHook((address, size) => {
        const insns = (this.current[cpu] = this.insns(address, size));
        const n = (this.counts[cpu]! += insns);
        buf.writeUInt32LE(n % 0x1_0000_0000, at);
        buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), at + 4);
      });
    });
  }

  /**
   * Drops the counts of blocks that overlap changed code. Only those: code
   * changes at every patch, and each dropped count costs a disassembly.
   */
  private forget(spans: readonly (readonly [bigint, bigint])[]): void {
    for (const [address, bySize] of this.blocks) {
      const a = BigInt.asUintN(64, BigInt(address));
      for (const size of bySize.keys()) {
        if (spans.some(([lo, hi]) => a < hi && a + BigInt(size) > lo)) bySize.delete(size);
      }
      if (bySize.size === 0) this.blocks.delete(address);
    }
  }

  private insns(address: number | bigint, size: number): number {
    let bySize = this.blocks.get(address);
    const known = bySize?.get(size);
    if (known !== undefined) return known;
    const a = BigInt.asUintN(64, BigInt(address));
    let n: number;
    try {
      n = disassemble(this.machine.memory.read(a, size), a).length || 1;
    } catch {
      n = 1; // a block over unreadable bytes faults on its first instruction
    }
    if (!bySize) {
      // Trampolines come and go at new addresses without a sync over the old
      // ones: start over now and then rather than keep every block ever run.
      if (this.blocks.size >= MAX_BLOCKS) this.blocks.clear();
      this.blocks.set(address, (bySize = new Map()));
    }
    bySize.set(size, n);
    return n;
  }

  /** CPU `cpu`'s clock before the block it is running: its instruction k (from 0) is number blockStart + k + 1. */
  blockStart(cpu: number): bigint {
    return BigInt((this.counts[cpu] ?? 0) - (this.current[cpu] ?? 0));
  }

  /** CPU `cpu`'s clock now. */
  now(cpu: number): bigint {
    return BigInt(this.counts[cpu] ?? 0);
  }
}

/** The per-CPU clock as the guest reads it. */
export function guestClockAddress(cpu: number): bigint {
  return PERCPU_BASE + BigInt(cpu * PERCPU_STRIDE + PERCPU.TRACE_CLOCK);
}
