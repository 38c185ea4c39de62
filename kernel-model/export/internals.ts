// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace's own work as nested slices: which of its pieces (a trampoline,
 * ftrace_caller or ftrace_regs_caller, the list function, a callback,
 * trace_log_event) each task was in, recorded by code hooks over ftrace's
 * code on every CPU. One JS callback per guest instruction there: for short
 * runs.
 *
 * Slices sit on the trace clock (traceClockNs, 1 µs per guest instruction):
 * an instruction's time is its own number on its CPU's instruction clock.
 * The clock the guest reads advances a whole block at a time, at the block's
 * start, so an event's stamp is the number of the last instruction of the
 * block that wrote it: its instant falls inside trace_log_event.
 */
import { MODULES_SIZE, MODULES_VADDR, PERCPU, PERCPU_BASE, PERCPU_STRIDE } from '../abi.js';
import { hex } from '../../emu/hex.js';
import type { HookHandle } from '../../emu/index.js';
import type { Ftrace } from '../ftrace/core.js';
import type { Kernel } from '../kernel.js';

export interface SliceEdge {
  ph: 'B' | 'E';
  cpu: number;
  pid: number;
  name: string;
  /** Trace-clock nanoseconds (a whole number). */
  tsNs: number;
}

/** Labels inside a piece of ftrace code that belong to the piece around them. */
const PART_OF: Record<string, string> = {
  ftrace_caller_op_ptr: 'ftrace_caller',
  ftrace_call: 'ftrace_caller',
  ftrace_caller_end: 'ftrace_return',
  ftrace_graph_call: 'ftrace_return',
  ftrace_regs_caller_op_ptr: 'ftrace_regs_caller',
  ftrace_regs_call: 'ftrace_regs_caller',
  ftrace_regs_caller_end: 'ftrace_regs_caller',
};

interface TaskState {
  stack: string[];
  lastNs: number;
}

export class FtraceInternals {
  readonly edges: SliceEdge[] = [];
  private readonly hooks: { cpu: number; h: HookHandle }[] = [];
  private readonly tasks = new Map<string, TaskState>();
  /** Per CPU: the clock seen last, and ftrace instructions of its block run since. */
  private readonly tick: { clock: bigint; n: number }[];
  private readonly entries: Set<bigint>;
  private readonly names = new Map<bigint, string>();

  constructor(
    private readonly kernel: Kernel,
    private readonly ftrace: Ftrace,
  ) {
    this.tick = kernel.machine.cpus.map(() => ({ clock: -1n, n: 0 }));
    this.entries = new Set(['ftrace_caller', 'ftrace_regs_caller'].map((n) => kernel.sym(n)));
  }

  /** Starts recording on every CPU. */
  attach(): void {
    this.kernel.machine.cpus.forEach((engine, cpu) => {
      for (const [a, b] of this.ftrace.codeRanges) this.hooks.push({ cpu, h: engine.addCodeHook((rip) => this.step(cpu, rip), a, b) });
    });
  }

  /** Stops recording and closes every open slice. */
  finish(): void {
    for (const { cpu, h } of this.hooks) this.kernel.machine.cpus[cpu]!.removeHook(h);
    this.hooks.length = 0;
    for (const [key, t] of this.tasks) {
      const [cpu, pid] = key.split('/').map(Number) as [number, number];
      this.closeAll(cpu, pid, t);
    }
  }

  /**
   * The piece of ftrace code `rip` is in: its symbol, with internal labels
   * folded into their piece. Kernel text never changes names; module space
   * does (a freed trampoline's memory may become another ops' trampoline).
   */
  private piece(rip: bigint, inModules: boolean): string {
    const known = inModules ? undefined : this.names.get(rip);
    if (known !== undefined) return known;
    const hit = this.kernel.symbols.lookup(rip);
    let name = hit ? hit.symbol.name : hex(rip);
    name = PART_OF[name] ?? name;
    if (!inModules) this.names.set(rip, name);
    return name;
  }

  /** Ends every open slice of a task just after its last instruction (and never after `notAfter`). */
  private closeAll(cpu: number, pid: number, t: TaskState, notAfter = Infinity): void {
    const ts = Math.min(t.lastNs + 1, notAfter);
    while (t.stack.length) this.edges.push({ ph: 'E', cpu, pid, name: t.stack.pop()!, tsNs: ts });
  }

  private step(cpu: number, rip: bigint): void {
    const m = this.kernel.memory;
    const clock = this.kernel.clock.now(cpu);
    const tick = this.tick[cpu]!;
    if (clock !== tick.clock) {
      tick.clock = clock;
      tick.n = 0;
    } else tick.n++;
    const ns = (Number(this.kernel.clock.blockStart(cpu)) + tick.n + 1) * 1000;
    const pid = Number(m.readU64(PERCPU_BASE + BigInt(cpu * PERCPU_STRIDE + PERCPU.CURRENT_PID)));
    const key = `${cpu}/${pid}`;
    let t = this.tasks.get(key);
    if (!t) this.tasks.set(key, (t = { stack: [], lastNs: ns }));
    const inModules = rip >= MODULES_VADDR && rip < MODULES_VADDR + BigInt(MODULES_SIZE);
    const name = this.piece(rip, inModules);
    // A caller's or a trampoline's first instruction starts a new traced call:
    // whatever was open belongs to the previous one, which has returned.
    const entry = this.entries.has(rip) || (inModules && this.kernel.symbols.lookup(rip)?.offset === 0);
    if (entry) this.closeAll(cpu, pid, t, ns);
    const at = t.stack.lastIndexOf(name);
    if (at >= 0) {
      // Back in a piece still open: everything above it has returned.
      while (t.stack.length > at + 1) this.edges.push({ ph: 'E', cpu, pid, name: t.stack.pop()!, tsNs: ns });
    } else {
      t.stack.push(name);
      this.edges.push({ ph: 'B', cpu, pid, name, tsNs: ns });
    }
    t.lastNs = ns;
  }
}
