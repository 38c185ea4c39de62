// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * How x86 changes live call sites (ftrace_replace_code /
 * ftrace_modify_code), as three strategies over the same batch of updates:
 *  - direct: check and write each site; right when no other CPU runs;
 *  - int3: the three passes of the breakpoint protocol, each followed by
 *    run_sync() on every CPU, with the other CPUs running between passes: an
 *    int3 on each site, then bytes 1-4, then byte 0. A CPU that hits one of
 *    those int3s meanwhile is handled by ftrace_int3_handler();
 *  - naive: each site's five bytes written in place one at a time, with the
 *    other CPUs running in between: the hazard the protocol exists to prevent.
 * Every strategy first checks that each site holds the bytes it is replacing.
 */
import { INT3_OPCODE, decodeBranch } from '../../../asm/encoding.js';
import type { Engine, InterruptVerdict } from '../../../emu/index.js';
import { FtraceBugError, type CodeUpdate } from '../../ftrace/arch.js';
import { eraRules } from '../../ftrace/era.js';
import type { Kernel, KernelConfig } from '../../kernel.js';
import { MCOUNT_INSN_SIZE } from './insn.js';

export interface TextPatcher {
  replace(updates: readonly CodeUpdate[]): void;
  /** How often a CPU hit one of this patcher's int3s. */
  readonly int3Hits: number;
}

const INSN_SIZE_N = BigInt(MCOUNT_INSN_SIZE);
const INT3 = Uint8Array.of(INT3_OPCODE);

/**
 * The ranges to sync: each site when there are few, else the one span that
 * covers them all, which is what Machine.syncCores would drop anyway (without
 * building 50,000 tuples first).
 */
function siteRanges(updates: readonly CodeUpdate[]): (readonly [bigint, bigint])[] {
  if (updates.length <= 8) return updates.map((u) => [u.ip, u.ip + INSN_SIZE_N] as const);
  let lo = updates[0]!.ip;
  let hi = lo;
  for (const u of updates) {
    if (u.ip < lo) lo = u.ip;
    if (u.ip > hi) hi = u.ip;
  }
  return [[lo, hi + INSN_SIZE_N]];
}

/** Throws ftrace_bug's report unless the site holds the bytes the update replaces. */
export function verifyOldCode(kernel: Kernel, u: CodeUpdate): void {
  if (kernel.memory.equals(u.ip, u.old)) return;
  const actual = kernel.memory.read(u.ip, MCOUNT_INSN_SIZE);
  throw new FtraceBugError(u.ip, kernel.symbolize(u.ip), u.old, actual, u.operation);
}

/** ftrace_modify_code_direct(), for a batch: at boot, and while nothing else runs. */
export class DirectPatcher implements TextPatcher {
  readonly int3Hits = 0;
  constructor(private readonly kernel: Kernel) {}

  replace(updates: readonly CodeUpdate[]): void {
    for (const u of updates) verifyOldCode(this.kernel, u);
    for (const u of updates) this.kernel.memory.write(u.ip, u.new);
    this.kernel.machine.syncCores(siteRanges(updates), false, updates.length);
  }

  /**
   * ftrace_update_code() at boot: site after site, stopping at the first
   * that does not hold what it should (the sites before it stay converted,
   * those after it keep calling __fentry__), and only then reporting it.
   */
  replaceUntilBug(updates: readonly CodeUpdate[]): void {
    let done = 0;
    try {
      for (const u of updates) {
        verifyOldCode(this.kernel, u);
        this.kernel.memory.write(u.ip, u.new);
        done++;
      }
    } finally {
      this.kernel.machine.syncCores(siteRanges(updates.slice(0, done)), false);
    }
  }
}

export class NaivePatcher implements TextPatcher {
  readonly int3Hits = 0;
  constructor(private readonly kernel: Kernel) {}

  replace(updates: readonly CodeUpdate[]): void {
    const { memory, machine } = this.kernel;
    for (const u of updates) {
      verifyOldCode(this.kernel, u);
      for (let i = 0; i < MCOUNT_INSN_SIZE; i++) {
        memory.write(u.ip + BigInt(i), u.new.subarray(i, i + 1));
        machine.syncCores([[u.ip, u.ip + INSN_SIZE_N]]);
      }
    }
  }
}

export class Int3Patcher implements TextPatcher {
  int3Hits = 0;
  /** The sites being changed, with the bytes they will hold (non-empty while int3s may be on sites). */
  private readonly inProgress = new Map<bigint, CodeUpdate>();

  constructor(
    private readonly kernel: Kernel,
    /** ftrace_location(): whether an int3 at ip may be one of ftrace's. */
    private readonly isFtraceLocation: (ip: bigint) => boolean,
  ) {
    for (const cpu of kernel.machine.cpus) cpu.addInterruptHook((n, c) => (n === 3 ? this.ftrace_int3_handler(c) : 'unhandled'));
  }

  replace(updates: readonly CodeUpdate[]): void {
    const { memory, machine } = this.kernel;
    const ranges = siteRanges(updates);
    const done: CodeUpdate[] = [];
    try {
      for (const u of updates) {
        verifyOldCode(this.kernel, u);
        memory.write(u.ip, INT3); // add_breakpoints
        this.inProgress.set(u.ip, u);
        done.push(u);
      }
    } catch (e) {
      for (const u of done) memory.write(u.ip, u.old.subarray(0, 1)); // remove_breakpoints
      machine.syncCores(ranges, false, done.length);
      this.inProgress.clear();
      throw e;
    }
    const n = updates.length;
    machine.syncCores(ranges, true, n);
    for (const u of updates) memory.write(u.ip + 1n, u.new.subarray(1, MCOUNT_INSN_SIZE)); // add_update
    machine.syncCores(ranges, true, n);
    for (const u of updates) memory.write(u.ip, u.new.subarray(0, 1)); // finish_update
    machine.syncCores(ranges, true, n);
    this.inProgress.clear();
  }

  /**
   * ftrace_int3_handler(): a CPU hit an int3 that ftrace put on a site it is
   * changing. In the 3.x kernels the site behaves as a 5-byte NOP (this call
   * is not traced); the modern kernel's text_poke_bp() emulates the new call.
   */
  private ftrace_int3_handler(cpu: Engine): InterruptVerdict {
    if (this.inProgress.size === 0) return 'unhandled';
    const site = cpu.readReg('rip') - 1n;
    const next = this.inProgress.get(site)?.new;
    if (!next && !this.isFtraceLocation(site)) return 'unhandled';
    this.int3Hits++;
    const branch = next && eraRules(this.kernel.config.era).int3EmulatesNewInsn ? decodeBranch(site, next) : undefined;
    if (branch?.kind === 'call') {
      const rsp = cpu.readReg('rsp') - 8n;
      this.kernel.memory.writeU64(rsp, site + BigInt(MCOUNT_INSN_SIZE));
      cpu.writeReg('rsp', rsp);
      cpu.writeReg('rip', branch.target);
    } else cpu.writeReg('rip', site + BigInt(MCOUNT_INSN_SIZE));
    return 'handled';
  }
}

export function makePatcher(kind: KernelConfig['patching'], kernel: Kernel, isFtraceLocation: (ip: bigint) => boolean): TextPatcher {
  switch (kind) {
    case 'direct':
      return new DirectPatcher(kernel);
    case 'naive':
      return new NaivePatcher(kernel);
    case 'int3':
      return new Int3Patcher(kernel, isFtraceLocation);
  }
}
