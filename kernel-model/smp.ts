// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A deterministic scheduler for the CPUs after CPU 0: each runs a task (a
 * workload function, restarted when it returns) in quanta of guest
 * instructions, in an order and with lengths drawn from a seeded generator.
 * Attached to a kernel, it also runs between the phases of code patching
 * (Kernel.onSync), so other CPUs execute while the control plane patches.
 * A fault stops that CPU and is recorded, not thrown.
 */
import { GuestFault } from '../emu/index.js';
import type { Kernel } from './kernel.js';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SmpTask {
  fn: string;
  args: bigint[];
}

export interface CpuFault {
  cpu: number;
  fault: GuestFault;
}

export interface SmpOptions {
  seed: number;
  /** Quantum lengths are drawn from [min, max] guest instructions. */
  quantum?: [number, number];
  /** Quanta run at each run_sync() while patching. */
  quantaPerSync?: number;
}

interface CpuState {
  cpu: number;
  task: SmpTask;
  running: boolean;
  dead: boolean;
  completions: number;
}

export class Smp {
  readonly random: () => number;
  private readonly states: CpuState[] = [];
  readonly faults: CpuFault[] = [];
  /** Instructions handed out in quanta (a quantum may end early, at a task's return). */
  grantedInstructions = 0;
  private readonly quantum: [number, number];
  private readonly quantaPerSync: number;

  constructor(
    private readonly kernel: Kernel,
    readonly opts: SmpOptions,
  ) {
    if (kernel.cpus.length < 2) throw new Error('the scheduler needs a kernel with at least two CPUs');
    this.random = prng(opts.seed);
    this.quantum = opts.quantum ?? [5, 200];
    this.quantaPerSync = opts.quantaPerSync ?? 2;
  }

  /** Gives CPU `cpu` (1..n-1) a task. */
  start(cpu: number, task: SmpTask): void {
    if (cpu < 1 || cpu >= this.kernel.cpus.length) throw new Error(`no CPU ${cpu} to schedule`);
    this.states.push({ cpu, task, running: false, dead: false, completions: 0 });
  }

  /**
   * Runs other CPUs whenever the control plane synchronises code (between
   * patch phases), and makes Kernel.synchronizeCpus wait for them.
   */
  attach(): void {
    this.kernel.onSync = () => this.run(this.quantaPerSync);
    this.kernel.synchronizeCpus = () => this.quiesce();
  }

  detach(): void {
    this.kernel.onSync = undefined;
    this.kernel.synchronizeCpus = undefined;
  }

  /** Runs each CPU that is inside ftrace code until it has left it. */
  quiesce(): void {
    for (const s of this.states) {
      const cpu = this.kernel.cpus[s.cpu]!;
      for (let guard = 0; s.running && !s.dead && this.kernel.inFtraceCode(cpu.readReg('rip')); guard++) {
        if (guard > 100_000) throw new Error(`CPU ${s.cpu} never left ftrace code`);
        this.runOne(s, 20);
      }
    }
  }

  private enter(s: CpuState): void {
    const k = this.kernel;
    const cpu = k.cpus[s.cpu]!;
    const sentinel = k.sym('__sim_return');
    const rsp = k.stackBase(s.cpu) + BigInt(16 * 1024) - 8n;
    k.memory.writeU64(rsp, sentinel);
    cpu.writeReg('rsp', rsp);
    const regs = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const;
    s.task.args.forEach((a, i) => cpu.writeReg(regs[i]!, a));
    cpu.writeReg('rip', k.sym(s.task.fn));
    s.running = true;
  }

  /** Runs `quanta` quanta, each on a CPU and of a length the generator picks. */
  run(quanta: number): void {
    const live = () => this.states.filter((s) => !s.dead);
    for (let q = 0; q < quanta; q++) {
      const alive = live();
      if (alive.length === 0) return;
      const s = alive[Math.floor(this.random() * alive.length)]!;
      const [lo, hi] = this.quantum;
      this.runOne(s, lo + Math.floor(this.random() * (hi - lo + 1)));
    }
  }

  private runOne(s: CpuState, n: number): void {
    if (!s.running) this.enter(s);
    const cpu = this.kernel.cpus[s.cpu]!;
    try {
      const end = cpu.run({ begin: cpu.readReg('rip'), until: this.kernel.sym('__sim_return'), quantum: n, timeoutMs: 10_000 });
      this.grantedInstructions += n;
      if (end.reason === 'until') {
        s.running = false;
        s.completions++;
      }
    } catch (e) {
      if (!(e instanceof GuestFault)) throw e;
      s.dead = true;
      this.faults.push({ cpu: s.cpu, fault: e });
    }
  }

  completions(cpu: number): number {
    return this.states.find((s) => s.cpu === cpu)?.completions ?? 0;
  }
}
