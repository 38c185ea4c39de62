// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * struct dyn_ftrace records, kept where the kernel keeps them: in guest
 * memory (ftrace_pages), sorted by ip. The low bits of flags count the ops
 * that trace the site; the high bits say what they want (REGS, TRAMP) and
 * what the site currently does (ENABLED, REGS_EN, TRAMP_EN).
 */
import type { GuestMemory } from '../../emu/index.js';
import { DYN_FTRACE, FTRACE_REF_MAX } from '../abi.js';

/*
 * The flags word is a u32 with its top bit in use, and JS bit operators
 * return int32: every result that is stored or compared goes through >>> 0.
 */
export const recFlags = {
  with: (flags: number, f: number): number => (flags | f) >>> 0,
  without: (flags: number, f: number): number => (flags & ~f) >>> 0,
  /** The bits of `f` that are set, as an unsigned value. */
  bits: (flags: number, f: number): number => (flags & f) >>> 0,
  count: (flags: number): number => flags & FTRACE_REF_MAX,
};

export class DynFtrace {
  /* The flags word's host buffer and offset, found once: records never move. */
  private readonly buf: Buffer;
  private readonly off: number;

  constructor(
    mem: GuestMemory,
    /** Address of this struct dyn_ftrace in guest memory. */
    readonly addr: bigint,
    /** Index in the sorted record array. */
    readonly index: number,
    /** The call site: written once into the guest record, never changed. */
    readonly ip: bigint,
  ) {
    [this.buf, this.off] = mem.locate(addr + BigInt(DYN_FTRACE.FLAGS), 4, 'write');
  }

  /** Read from the guest record each time: guest memory holds the state. */
  get flags(): number {
    return this.buf.readUInt32LE(this.off);
  }

  set flags(v: number) {
    this.buf.writeUInt32LE(v >>> 0, this.off);
  }

  /** ftrace_rec_count(): how many enabled ops trace this site. */
  get count(): number {
    return recFlags.count(this.flags);
  }

  has(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }
}

export class DynFtraceTable {
  private readonly recs: DynFtrace[] = [];
  private readonly ips: bigint[] = [];

  /** ftrace_process_locs(): sort the call-site addresses and create a record for each. */
  constructor(mem: GuestMemory, base: bigint, sites: readonly bigint[]) {
    const sorted = [...sites].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    sorted.forEach((ip, i) => {
      const addr = base + BigInt(i * DYN_FTRACE.SIZE);
      mem.writeU64(addr + BigInt(DYN_FTRACE.IP), ip);
      mem.writeU64(addr + BigInt(DYN_FTRACE.FLAGS), 0n);
      this.recs.push(new DynFtrace(mem, addr, i, ip));
      this.ips.push(ip);
    });
  }

  get length(): number {
    return this.recs.length;
  }

  all(): readonly DynFtrace[] {
    return this.recs;
  }

  at(i: number): DynFtrace {
    return this.recs[i]!;
  }

  /** The first record in [start, end), as ftrace_location_range() finds it. */
  lookupRange(start: bigint, end: bigint): DynFtrace | undefined {
    const i = firstInRange(this.ips, start, end);
    return i < 0 ? undefined : this.recs[i];
  }

  /** ftrace_location(): the record whose call site is at ip. */
  lookup(ip: bigint): DynFtrace | undefined {
    return this.lookupRange(ip, ip + 1n);
  }
}

/** The index of the first of the ascending call sites `ips` in [start, end), or -1. */
export function firstInRange(ips: readonly bigint[], start: bigint, end: bigint): number {
  let lo = 0;
  let hi = ips.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ips[mid]! < start) lo = mid + 1;
    else hi = mid;
  }
  return lo < ips.length && ips[lo]! < end ? lo : -1;
}
