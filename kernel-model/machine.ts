// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The machine under the model kernel: one guest memory, N CPUs over it, the
 * host's way of calling into the guest, and the only way the host changes
 * code (text_poke + sync_core on every CPU). It knows nothing of ftrace or of
 * what the kernel holds; the SMP scheduler plugs in as its CpuScheduler.
 */
import { Engine, type DataFaultLocator, type GuestMemory, type RunOptions, type Symbolizer } from '../emu/index.js';
import { locateDataFault } from './fault-site.js';

/** How a kernel waits for tasks before freeing code they may be running. */
export type TaskSync = 'schedule_on_each_cpu' | 'rcu_tasks';

/**
 * What runs the CPUs other than CPU 0. With one CPU (or no scheduler
 * attached) there is nobody else to run and nothing to wait for.
 */
export interface CpuScheduler {
  /** After run_sync(): the other CPUs may run a little before the next patch phase. */
  afterSync(): void;
  /**
   * What ftrace_sync_ipi stands for: returns once no other CPU's running task
   * is inside ftrace's code.
   */
  quiesce(): void;
  /** schedule_on_each_cpu() or synchronize_rcu_tasks(). */
  waitFor(how: TaskSync): void;
}

export const UNIPROCESSOR: CpuScheduler = { afterSync() {}, quiesce() {}, waitFor() {} };

export type CodeRange = readonly [first: bigint, last: bigint];

export interface CallOptions {
  timeoutMs?: number;
  budget?: number;
}

/** Retranslated code piles up in Unicorn's buffer: CPUs renew their engine after this many pokes. */
const RENEW_AFTER_POKES = 2000;

export class Machine {
  /** CPU 0 runs the control plane's calls; the others always count instructions, for the scheduler's quanta. */
  readonly cpus: Engine[] = [];
  scheduler: CpuScheduler = UNIPROCESSOR;
  /** Called at every syncCores() with the spans whose code may have changed (caches of decoded code drop them). */
  readonly onSync: ((spans: readonly (readonly [bigint, bigint])[]) => void)[] = [];
  private pokesSinceRenew = 0;

  constructor(
    readonly memory: GuestMemory,
    cpus: number,
    symbolize: Symbolizer,
    /** The return address every host-made call pushes; runs stop when %rip reaches it. */
    readonly sentinel: bigint,
  ) {
    const locateFault: DataFaultLocator = (start, address, write, regs) => locateDataFault(memory, start, address, write, regs);
    for (let c = 0; c < cpus; c++) this.cpus.push(Engine.open(memory, { symbolize, counting: c > 0, locateDataFault: locateFault }));
  }

  get cpu(): Engine {
    return this.cpus[0]!;
  }

  /**
   * Sets `cpu` up to call fn(args) on the stack below `stackTop`, returning
   * to the sentinel: return address pushed, %rsp 8 below a 16-byte boundary
   * as at any function's entry, arguments in registers, %rip.
   */
  enterCall(cpu: Engine, stackTop: bigint, fn: bigint, args: readonly bigint[]): void {
    if (args.length > 6) throw new Error('at most six register arguments');
    const rsp = stackTop - 8n;
    this.memory.writeU64(rsp, this.sentinel);
    cpu.writeReg('rsp', rsp);
    const regs = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const;
    args.forEach((a, i) => cpu.writeReg(regs[i]!, a));
    cpu.writeReg('rip', fn);
  }

  /** Calls fn(args) on CPU 0 and returns %rax. Faults are thrown as GuestFault. */
  call(fn: bigint, args: readonly bigint[], stackTop: bigint, opts: CallOptions = {}): bigint {
    const cpu = this.cpu;
    this.enterCall(cpu, stackTop, fn, args);
    const run: RunOptions = { begin: fn, until: this.sentinel, timeoutMs: opts.timeoutMs ?? 10_000 };
    if (opts.budget !== undefined) run.budget = opts.budget;
    cpu.run(run);
    return cpu.readReg('rax');
  }

  /** Writes new bytes over code and drops every CPU's translations of them. */
  textPoke(address: bigint, bytes: Uint8Array): void {
    this.memory.write(address, bytes);
    this.syncCores([[address, address + BigInt(bytes.length)]], false);
  }

  /**
   * run_sync(): make every CPU see the current bytes of these ranges, by
   * dropping its translations of them (sync_core() on each CPU). Then, when
   * `letOthersRun`, give the scheduler its chance to run the other CPUs.
   */
  syncCores(
    ranges: readonly (readonly [bigint, bigint])[],
    letOthersRun = true,
    /** How many code changes the ranges stand for (a caller may pass one span for many sites). */
    pokes = ranges.length,
  ): void {
    // Many ranges are dropped as the one span that covers them: one call per
    // CPU, and dropping code that did not change only costs a retranslation.
    let spans = ranges;
    if (ranges.length > 8) {
      let lo = ranges[0]![0];
      let hi = ranges[0]![1];
      for (const [a, b] of ranges) {
        if (a < lo) lo = a;
        if (b > hi) hi = b;
      }
      spans = [[lo, hi]];
    }
    for (const cpu of this.cpus) for (const [a, b] of spans) cpu.invalidate(a, b);
    for (const f of this.onSync) f(spans);
    // A CPU with hooks installed declines to renew; it is asked again next time round.
    this.pokesSinceRenew += pokes;
    if (this.pokesSinceRenew >= RENEW_AFTER_POKES) {
      for (const c of this.cpus) c.renew();
      this.pokesSinceRenew = 0;
    }
    if (letOthersRun) this.scheduler.afterSync();
  }

  close(): void {
    for (const c of this.cpus) c.close();
  }
}
