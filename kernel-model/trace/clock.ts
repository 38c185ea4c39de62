// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest instruction clock behind trace_clock_local(): each CPU counts
 * the guest instructions it has been given to run (a block hook adds each
 * translated block's instruction count as the block starts) and keeps the
 * count in its per-CPU area, where the guest reads it. Deterministic: the
 * same run gives the same clock, unlike any host time source; a duration is
 * the guest instructions between two readings.
 */
import { disassemble } from '../../asm/disasm.js';
import { PERCPU, PERCPU_BASE, PERCPU_STRIDE } from '../abi.js';
import type { Machine } from '../machine.js';

export class InstructionClock {
  /** Instructions per block, by address and size; cleared whenever code changes. */
  private readonly blocks = new Map<number | bigint, Map<number, number>>();
  private readonly counts: number[];

  /** Install on a machine whose CPUs have not run yet (initDisassembler() awaited). */
  constructor(private readonly machine: Machine) {
    const percpu = machine.memory.allRegions().find((r) => r.base === PERCPU_BASE);
    if (!percpu) throw new Error('the instruction clock needs the per-CPU areas mapped');
    const buf = percpu.buffer;
    this.counts = machine.cpus.map(() => 0);
    machine.cpus.forEach((engine, cpu) => {
      const at = cpu * PERCPU_STRIDE + PERCPU.TRACE_CLOCK;
      engine.addBlockHook((address, size) => {
        const n = (this.counts[cpu]! += this.insns(address, size));
        buf.writeUInt32LE(n % 0x1_0000_0000, at);
        buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), at + 4);
      });
    });
    machine.onSync.push(() => this.blocks.clear());
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
    if (!bySize) this.blocks.set(address, (bySize = new Map()));
    bySize.set(size, n);
    return n;
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
