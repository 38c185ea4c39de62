// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Guest faults as typed errors. A fault names what went wrong (kind), where the
 * access went (address), where the CPU was (rip, and the symbol when the caller
 * gave the engine a symbolizer) and the registers at the time.
 */
import { hex } from './hex.js';
import type { RegName } from './unicorn.js';

export type FaultKind =
  | 'unmapped-fetch'
  | 'unmapped-read'
  | 'unmapped-write'
  | 'protection-fetch'
  | 'protection-read'
  | 'protection-write'
  | 'invalid-instruction'
  | 'unhandled-interrupt'
  | 'budget-exhausted'
  | 'timeout'
  | 'engine-error';

export type RegisterDump = Record<RegName, bigint>;

export interface FaultDetails {
  kind: FaultKind;
  /** The faulting access address (for memory faults), else the RIP. */
  address: bigint;
  rip: bigint;
  symbol: string | undefined;
  registers: RegisterDump;
  /** The bytes at RIP, when they could be read. */
  code: Uint8Array | undefined;
  /** Extra words: the interrupt number, the budget, Unicorn's own message. */
  note: string;
}

export class GuestFault extends Error implements FaultDetails {
  readonly kind: FaultKind;
  readonly address: bigint;
  readonly rip: bigint;
  readonly symbol: string | undefined;
  readonly registers: RegisterDump;
  readonly code: Uint8Array | undefined;
  readonly note: string;

  constructor(d: FaultDetails) {
    const where = d.symbol ? `${hex(d.rip)} <${d.symbol}>` : hex(d.rip);
    const what = d.kind.startsWith('unmapped') || d.kind.startsWith('protection') ? ` at ${hex(d.address)}` : '';
    super(`guest fault: ${d.kind}${what}, rip ${where}${d.note ? ` (${d.note})` : ''}`);
    this.name = 'GuestFault';
    this.kind = d.kind;
    this.address = d.address;
    this.rip = d.rip;
    this.symbol = d.symbol;
    this.registers = d.registers;
    this.code = d.code;
    this.note = d.note;
  }

  /** A multi-line report, as a kernel oops would print it. */
  report(): string {
    const lines = [this.message];
    if (this.code) lines.push(`Code: ${Buffer.from(this.code).toString('hex').replace(/(..)/g, '$1 ').trim()}`);
    const names = Object.keys(this.registers) as RegName[];
    for (let i = 0; i < names.length; i += 3) {
      lines.push(
        names
          .slice(i, i + 3)
          .map((n) => `${n.toUpperCase().padStart(6)}: ${BigInt.asUintN(64, this.registers[n]).toString(16).padStart(16, '0')}`)
          .join(' '),
      );
    }
    return lines.join('\n');
  }

  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      address: hex(this.address),
      rip: hex(this.rip),
      symbol: this.symbol ?? null,
      note: this.note,
      code: this.code ? Buffer.from(this.code).toString('hex') : null,
      registers: Object.fromEntries(Object.entries(this.registers).map(([k, v]) => [k, hex(v)])),
    };
  }
}
