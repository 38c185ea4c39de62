// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * struct ftrace_ops and struct ftrace_hash in guest memory.
 *
 * The guest list function reads exactly these structures, so the control
 * plane keeps them current: flags, next, trampoline, and the filter and
 * notrace hashes, rebuilt in kmalloc'd memory whenever a filter changes.
 * The TypeScript sets of ips are the kernel's own view of the same hashes,
 * used by the record accounting that ftrace.c does in C.
 */
import { CALLBACK_FUNC, CALLBACK_RECURSION_SAFE, FTRACE_OPS_FL, GOLDEN_RATIO_64, HASH, HASH_ENTRY, OPS, STATS, type CallbackName, type OpsFlagName } from '../abi.js';
import { KernelDataCorrupted } from '../corruption.js';
import type { Kernel } from '../kernel.js';

/** No trampoline create_trampoline() makes comes near a page. */
const MAX_TRAMPOLINE_SIZE = 4096;

export interface OpsSpec {
  name: string;
  callback: CallbackName;
  flags?: readonly OpsFlagName[];
  /** kmalloc'd (kprobes, perf) rather than a static variable (function tracer). */
  dynamic?: boolean;
}

export class FtraceOps {
  readonly name: string;
  readonly callback: CallbackName;
  /** Guest address of the struct ftrace_ops. */
  readonly addr: bigint;
  readonly statsAddr: bigint;
  /** Allocated with kmalloc: registration will mark it FTRACE_OPS_FL_DYNAMIC. */
  readonly kmalloced: boolean;
  filter = new Set<bigint>();
  notrace = new Set<bigint>();
  /** The hashes before the change in progress (old_hash), for trampoline lookups. */
  oldFilter: Set<bigint> | undefined;
  oldNotrace: Set<bigint> | undefined;

  constructor(
    private readonly kernel: Kernel,
    spec: OpsSpec,
  ) {
    this.name = spec.name;
    this.callback = spec.callback;
    this.kmalloced = !!spec.dynamic;
    const alloc = spec.dynamic ? kernel.kmalloc : kernel.staticPool;
    const addr = alloc.alloc(OPS.SIZE + STATS.SIZE);
    if (addr === undefined) throw new Error(`no memory for ftrace_ops ${spec.name}`);
    this.addr = addr;
    this.statsAddr = addr + BigInt(OPS.SIZE);
    const m = kernel.memory;
    m.fill(addr, OPS.SIZE + STATS.SIZE, 0);
    m.writeU64(at(addr, OPS.FUNC), kernel.sym(CALLBACK_FUNC[spec.callback]));
    m.writeU64(at(addr, OPS.PRIVATE), this.statsAddr);
    let flags = CALLBACK_RECURSION_SAFE[spec.callback] ? FTRACE_OPS_FL.RECURSION_SAFE : 0n;
    for (const f of spec.flags ?? []) flags |= FTRACE_OPS_FL[f];
    this.flags = flags;
  }

  /** Frees the struct (kfree for a dynamic ops). */
  destroy(): void {
    writeHashPointer(this.kernel, this.field(OPS.FILTER_HASH), new Set());
    writeHashPointer(this.kernel, this.field(OPS.NOTRACE_HASH), new Set());
    (this.kmalloced ? this.kernel.kmalloc : this.kernel.staticPool).release(this.addr);
  }

  private field(off: number): bigint {
    return at(this.addr, off);
  }

  get flags(): bigint {
    return this.kernel.memory.readU64(this.field(OPS.FLAGS));
  }
  set flags(v: bigint) {
    this.kernel.memory.writeU64(this.field(OPS.FLAGS), v);
  }
  hasFlag(f: OpsFlagName): boolean {
    return (this.flags & FTRACE_OPS_FL[f]) !== 0n;
  }
  setFlag(f: OpsFlagName, on: boolean): void {
    this.flags = on ? this.flags | FTRACE_OPS_FL[f] : this.flags & ~FTRACE_OPS_FL[f];
  }

  get func(): bigint {
    return this.kernel.memory.readU64(this.field(OPS.FUNC));
  }
  get next(): bigint {
    return this.kernel.memory.readU64(this.field(OPS.NEXT));
  }
  set next(v: bigint) {
    this.kernel.memory.writeU64(this.field(OPS.NEXT), v);
  }
  get trampoline(): bigint {
    return this.kernel.memory.readU64(this.field(OPS.TRAMPOLINE));
  }
  set trampoline(v: bigint) {
    this.kernel.memory.writeU64(this.field(OPS.TRAMPOLINE), v);
  }
  get trampolineSize(): number {
    const size = this.kernel.memory.readU64(this.field(OPS.TRAMPOLINE_SIZE));
    if (size > BigInt(MAX_TRAMPOLINE_SIZE)) throw new KernelDataCorrupted('ftrace_ops', this.addr, `${this.name}'s trampoline_size is ${size}`);
    return Number(size);
  }
  set trampolineSize(v: number) {
    this.kernel.memory.writeU64(this.field(OPS.TRAMPOLINE_SIZE), BigInt(v));
  }

  /** What the guest callbacks counted through op->private. */
  get invocations(): bigint {
    return this.kernel.memory.readU64(at(this.statsAddr, STATS.INVOCATIONS));
  }
  resetInvocations(): void {
    this.kernel.memory.writeU64(at(this.statsAddr, STATS.INVOCATIONS), 0n);
  }

  /** Installs new filter/notrace hashes in the guest (the old guest hashes are freed). */
  publishHashes(): void {
    writeHashPointer(this.kernel, this.field(OPS.FILTER_HASH), this.filter);
    writeHashPointer(this.kernel, this.field(OPS.NOTRACE_HASH), this.notrace);
  }

  /** hash_contains_ip() over the current hashes, or over old_hash when asked. */
  tracesIp(ip: bigint, which: 'current' | 'old' = 'current'): boolean {
    const filter = which === 'old' ? (this.oldFilter ?? this.filter) : this.filter;
    const notrace = which === 'old' ? (this.oldNotrace ?? this.notrace) : this.notrace;
    return (filter.size === 0 || filter.has(ip)) && !notrace.has(ip);
  }
}

/** The kernel's fls(): the 1-based index of the highest set bit, 0 for 0 (clz32(0) is 32). */
function fls(x: number): number {
  return 32 - Math.clz32(x);
}

/** A field of the guest struct at `base`. */
function at(base: bigint, off: number): bigint {
  return base + BigInt(off);
}

/** hash_long(ip, bits), as the guest's ftrace_lookup_ip computes it. */
export function hashLong(ip: bigint, bits: number): number {
  // bits 0 shifts all 64 bits out: bucket 0, the only one.
  return Number(((ip * GOLDEN_RATIO_64) & ((1n << 64n) - 1n)) >> BigInt(64 - bits));
}

/**
 * Builds a struct ftrace_hash for `ips` in one kmalloc'd block (header,
 * buckets, entries) and stores its address at `slot` (rcu_assign_pointer).
 * The block that was there is freed, poisoned, after a grace period
 * (free_ftrace_hash_rcu: call_rcu_sched), since another CPU may still be in
 * ftrace_ops_test() reading it; KernelConfig.hashFree 'immediate' shows why.
 * An empty set is stored as NULL: the kernel's EMPTY_HASH.
 */
export function writeHashPointer(kernel: Kernel, slot: bigint, ips: ReadonlySet<bigint>): void {
  const m = kernel.memory;
  const old = m.readU64(slot);
  let addr = 0n;
  if (ips.size > 0) {
    const bits = Math.min(fls(ips.size >> 1), 12); // ftrace_hash_move()'s sizing
    const nb = 1 << bits;
    const size = HASH.SIZE + nb * 8 + ips.size * HASH_ENTRY.SIZE;
    const a = kernel.kmalloc.alloc(size);
    if (a === undefined) throw new Error('kmalloc: out of memory for an ftrace_hash');
    addr = a;
    m.fill(a, size, 0);
    const buckets = at(a, HASH.SIZE);
    m.writeU64(at(a, HASH.SIZE_BITS), BigInt(bits));
    m.writeU64(at(a, HASH.COUNT), BigInt(ips.size));
    m.writeU64(at(a, HASH.BUCKETS), buckets);
    let entry = buckets + BigInt(nb * 8);
    for (const ip of ips) {
      const b = buckets + BigInt(hashLong(ip, bits) * 8);
      m.writeU64(at(entry, HASH_ENTRY.IP), ip);
      m.writeU64(at(entry, HASH_ENTRY.NEXT), m.readU64(b));
      m.writeU64(b, entry);
      entry += BigInt(HASH_ENTRY.SIZE);
    }
  }
  m.writeU64(slot, addr);
  if (old === 0n) return;
  if (kernel.config.hashFree === 'immediate') kernel.kfreePoisoned(old);
  else kernel.call_rcu(() => kernel.kfreePoisoned(old));
}
