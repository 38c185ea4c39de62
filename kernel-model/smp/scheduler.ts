// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A deterministic scheduler for the CPUs after CPU 0. Each CPU runs tasks
 * (a workload function on a stack of its own, restarted when it returns) in
 * quanta of guest instructions whose order and lengths come from a seeded
 * generator. Attached to the machine (as its CpuScheduler), it also runs
 * between the phases of code patching, so other CPUs execute while the
 * control plane patches, and it implements the kernel's ways of waiting.
 *
 * Tasks switch on a CPU when the running one calls schedule() (a voluntary
 * switch), when it returns, and, with KernelConfig.preempt, when a timer
 * quantum ends (preemption, wherever the task is: inside a trampoline too).
 * A fault stops that CPU and is recorded, not thrown.
 */
import { GuestFault, GENERAL_REGS, type HookHandle, type RegName } from '../../emu/index.js';
import { PERCPU, PERCPU_BASE, PERCPU_STRIDE, THREAD_SIZE } from '../abi.js';
import type { Ftrace } from '../ftrace/core.js';
import type { Kernel } from '../kernel.js';
import { UNIPROCESSOR, type CpuScheduler, type Machine, type TaskSync } from '../machine.js';

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
  task: number;
  fault: GuestFault;
}

export interface SmpOptions {
  seed: number;
  /** Quantum lengths are drawn from [min, max] guest instructions. */
  quantum?: [number, number];
  /** Quanta run at each run_sync() while patching. */
  quantaPerSync?: number;
  /** With KernelConfig.preempt: the chance that a quantum's end preempts the task. */
  preemptChance?: number;
}

export interface Task {
  id: number;
  pid: number;
  cpu: number;
  spec: SmpTask;
  stackTop: bigint;
  /** Its struct task_struct in guest memory (`current` while it runs). */
  taskStruct: bigint;
  /** Registers while switched out; undefined before the first run and after each return. */
  saved: Map<RegName, bigint> | undefined;
  /** Times it called schedule() or returned: RCU-tasks' quiescent states. */
  voluntary: number;
  completions: number;
  /** current->trace_recursion and the preempt count while switched out. */
  traceRecursion: bigint;
  preemptCount: bigint;
}

interface CpuState {
  cpu: number;
  tasks: Task[];
  current: number;
  dead: boolean;
  /** Context switches and schedule() calls on this CPU: what schedule_on_each_cpu waits for. */
  schedules: number;
  /** The task now running was just stopped at schedule(): let it through once. */
  pastSchedule: boolean;
  hook: HookHandle | undefined;
}

export class Smp implements CpuScheduler {
  readonly random: () => number;
  private readonly cpus: CpuState[] = [];
  readonly faults: CpuFault[] = [];
  private readonly quantum: [number, number];
  private readonly quantaPerSync: number;
  private readonly preemptChance: number;
  private nextTask = 0;
  private readonly kernel: Kernel;
  private readonly machine: Machine;
  private readonly ftrace: Ftrace;

  constructor(
    booted: { kernel: Kernel; ftrace: Ftrace },
    readonly opts: SmpOptions,
  ) {
    this.kernel = booted.kernel;
    this.ftrace = booted.ftrace;
    this.machine = booted.kernel.machine;
    if (this.machine.cpus.length < 2) throw new Error('the scheduler needs a kernel with at least two CPUs');
    this.random = prng(opts.seed);
    this.quantum = opts.quantum ?? [5, 200];
    this.quantaPerSync = opts.quantaPerSync ?? 2;
    this.preemptChance = opts.preemptChance ?? 0.3;
  }

  private state(cpu: number): CpuState {
    let s = this.cpus.find((x) => x.cpu === cpu);
    if (!s) {
      s = { cpu, tasks: [], current: 0, dead: false, schedules: 0, pastSchedule: false, hook: undefined };
      const st = s;
      // schedule() is where a task gives up its CPU: stop there, so the scheduler can switch.
      // (Just after schedule()'s own call site, so that the site runs once per call.)
      const at = this.schedulePoint();
      st.hook = this.machine.cpus[cpu]!.addCodeHook(
        () => {
          if (st.pastSchedule) {
            st.pastSchedule = false;
            return;
          }
          this.machine.cpus[cpu]!.stop();
        },
        at,
        at,
      );
      this.cpus.push(s);
    }
    return s;
  }

  /** Where a task is taken off its CPU when it calls schedule(). */
  private schedulePoint(): bigint {
    return this.kernel.sym('schedule') + 5n;
  }

  /** Gives CPU `cpu` (1..n-1) one more task, on a stack of its own. Returns the task. */
  start(cpu: number, spec: SmpTask): Task {
    if (cpu < 1 || cpu >= this.machine.cpus.length) throw new Error(`no CPU ${cpu} to schedule`);
    const s = this.state(cpu);
    const id = this.nextTask++;
    const stackTop = s.tasks.length === 0 ? this.kernel.stackBase(cpu) + BigInt(THREAD_SIZE) : this.kernel.allocTaskStack(id);
    const pid = 100 + id;
    const taskStruct = this.kernel.tasks.create(pid, this.ftrace.graph.active > 0);
    const t: Task = { id, pid, cpu, spec, stackTop, taskStruct, saved: undefined, voluntary: 0, completions: 0, traceRecursion: 0n, preemptCount: 0n };
    s.tasks.push(t);
    // Its comm: the workload's name (sim_workload_syscalls runs as "syscalls").
    this.kernel.setTaskComm(t.pid, spec.fn.replace(/^sim_workload_/, ''));
    return t;
  }

  /** Every task, on every CPU. */
  allTasks(): Task[] {
    return this.cpus.flatMap((s) => s.tasks);
  }

  current(cpu: number): Task | undefined {
    const s = this.cpus.find((x) => x.cpu === cpu);
    return s ? s.tasks[s.current] : undefined;
  }

  /**
   * Runs other CPUs whenever the control plane synchronises code (between
   * patch phases), and gives the kernel the scheduler's ways of waiting.
   */
  attach(): void {
    this.machine.scheduler = this;
  }

  detach(): void {
    this.machine.scheduler = UNIPROCESSOR;
  }

  afterSync(): void {
    this.run(this.quantaPerSync);
  }

  private pid(cpu: number, t: Task): void {
    this.kernel.memory.writeU64(this.percpu(cpu, PERCPU.CURRENT_PID), BigInt(t.pid));
    this.kernel.tasks.setCurrent(cpu, t.taskStruct);
  }

  private percpu(cpu: number, field: number): bigint {
    return PERCPU_BASE + BigInt(cpu * PERCPU_STRIDE + field);
  }

  /** The running task's preempt count on a CPU: a task is never preempted while it is above zero. */
  preemptCount(cpu: number): bigint {
    return this.kernel.memory.readU64(this.percpu(cpu, PERCPU.PREEMPT_COUNT));
  }

  /** Puts a task on its CPU: its saved registers, or a fresh call of its function. */
  private switchIn(s: CpuState, t: Task): void {
    const k = this.kernel;
    const cpu = this.machine.cpus[s.cpu]!;
    const resuming = t.saved !== undefined;
    if (t.saved) {
      for (const [r, v] of t.saved) cpu.writeReg(r, v);
      t.saved = undefined;
      if (cpu.readReg('rip') === this.schedulePoint()) s.pastSchedule = true;
    } else {
      this.machine.enterCall(cpu, t.stackTop, k.sym(t.spec.fn), t.spec.args);
      s.pastSchedule = false;
    }
    this.pid(s.cpu, t);
    // The recursion bits and preempt count are the task's (a fresh call starts with none).
    const m = this.kernel.memory;
    m.writeU64(this.percpu(s.cpu, PERCPU.RECURSION), resuming ? t.traceRecursion : 0n);
    m.writeU64(this.percpu(s.cpu, PERCPU.PREEMPT_COUNT), resuming ? t.preemptCount : 0n);
    this.started.add(t);
  }

  private switchOut(s: CpuState, t: Task): void {
    const cpu = this.machine.cpus[s.cpu]!;
    t.saved = new Map(GENERAL_REGS.map((r) => [r, cpu.readReg(r)]));
    t.traceRecursion = this.kernel.memory.readU64(this.percpu(s.cpu, PERCPU.RECURSION));
    t.preemptCount = this.preemptCount(s.cpu);
  }

  /** Switches the CPU to its next task that is not held (round robin); a context switch either way. */
  private contextSwitch(s: CpuState, saveCurrent = true): void {
    s.schedules++;
    if (s.tasks.length < 2) return;
    const prev = s.tasks[s.current]!;
    let next = s.current;
    for (let k = 1; k < s.tasks.length; k++) {
      const i = (s.current + k) % s.tasks.length;
      if (!this.held.has(s.tasks[i]!)) {
        next = i;
        break;
      }
    }
    if (next === s.current && saveCurrent) return; // nobody else may run: prev goes on
    if (saveCurrent) this.switchOut(s, prev);
    s.current = next;
    this.switchIn(s, s.tasks[next]!);
  }

  /** Preempted tasks kept off their CPU until release(): see preempt(). */
  private readonly held = new Set<Task>();

  /** Lets the tasks preempt({ hold: true }) kept off their CPU be scheduled again. */
  release(): void {
    this.held.clear();
  }

  /** Runs `quanta` quanta, each on a CPU and of a length the generator picks. */
  run(quanta: number): void {
    for (let q = 0; q < quanta; q++) {
      const alive = this.cpus.filter((s) => !s.dead);
      if (alive.length === 0) return;
      const s = alive[Math.floor(this.random() * alive.length)]!;
      const [lo, hi] = this.quantum;
      this.runOne(s, lo + Math.floor(this.random() * (hi - lo + 1)));
    }
  }

  private started = new Set<Task>();

  /**
   * Where a task is: its %rip and %rsp (from its CPU while it runs there,
   * else as it was switched out), or undefined when it has not started (or
   * returned and will start afresh).
   */
  where(t: Task): { rip: bigint; rsp: bigint } | undefined {
    if (!this.started.has(t)) return undefined;
    if (this.current(t.cpu) === t) {
      const cpu = this.machine.cpus[t.cpu]!;
      return { rip: cpu.readReg('rip'), rsp: cpu.readReg('rsp') };
    }
    return t.saved ? { rip: t.saved.get('rip')!, rsp: t.saved.get('rsp')! } : undefined;
  }

  /** Runs one quantum of CPU s; returns what ended it. */
  private runOne(s: CpuState, n: number): 'quantum' | 'schedule' | 'return' | 'fault' {
    const k = this.kernel;
    const cpu = this.machine.cpus[s.cpu]!;
    const t = s.tasks[s.current]!;
    if (!this.started.has(t)) this.switchIn(s, t);
    try {
      const end = cpu.run({ begin: cpu.readReg('rip'), until: this.machine.sentinel, quantum: n, timeoutMs: 10_000 });
      if (end.reason === 'until') {
        // The task returned: a quiescent state; it starts again, fresh, when next chosen.
        t.completions++;
        t.voluntary++;
        this.started.delete(t);
        t.saved = undefined;
        this.contextSwitch(s, false);
        return 'return';
      }
      if (end.reason === 'stopped') {
        // Stopped at schedule(): a voluntary switch.
        t.voluntary++;
        s.pastSchedule = true;
        this.contextSwitch(s);
        return 'schedule';
      }
      if (k.config.preempt && s.tasks.length > 1 && this.preemptCount(s.cpu) === 0n && this.random() < this.preemptChance) this.contextSwitch(s);
      return 'quantum';
    } catch (e) {
      if (!(e instanceof GuestFault)) throw e;
      s.dead = true;
      this.faults.push({ cpu: s.cpu, task: t.id, fault: e });
      return 'fault';
    }
  }

  /** Runs CPU `cpu` in one-instruction steps until its RIP satisfies `pred` (false if it never does). */
  runUntil(cpu: number, pred: (rip: bigint) => boolean, maxSteps = 100_000): boolean {
    const s = this.state(cpu);
    for (let i = 0; i < maxSteps && !s.dead; i++) {
      if (this.started.has(s.tasks[s.current]!) && pred(this.machine.cpus[cpu]!.readReg('rip'))) return true;
      this.runOne(s, 1);
    }
    return false;
  }

  /**
   * A timer interrupt on `cpu` now: its task is preempted where it is. With
   * `hold`, it stays off the CPU until release() or a wait for tasks: the
   * ftrace work that follows takes the model a few quanta, a kernel a few
   * microseconds of the other task's timeslice.
   */
  preempt(cpu: number, opts: { hold?: boolean } = {}): boolean {
    if (!this.kernel.config.preempt) throw new Error('preemption needs KernelConfig.preempt');
    // With preemption disabled the interrupt only marks the task for rescheduling.
    if (this.preemptCount(cpu) !== 0n) return false;
    const s = this.state(cpu);
    const task = s.tasks[s.current]!;
    this.contextSwitch(s);
    if (opts.hold && s.tasks[s.current] !== task) this.held.add(task);
    return true;
  }

  /** Runs each CPU whose running task is inside ftrace code until it has left it (ftrace_sync_ipi). */
  quiesce(): void {
    for (const s of this.cpus) {
      const cpu = this.machine.cpus[s.cpu]!;
      const t = s.tasks[s.current]!;
      for (let guard = 0; this.started.has(t) && s.tasks[s.current] === t && !s.dead && this.ftrace.inFtraceCode(cpu.readReg('rip')); guard++) {
        if (guard > 100_000) throw new Error(`CPU ${s.cpu} never left ftrace code`);
        this.runOne(s, 20);
      }
    }
  }

  /**
   * The waits a kernel does before freeing a trampoline:
   * schedule_on_each_cpu() returns once every CPU has scheduled (a context
   * switch or a schedule() call); RCU-tasks once every task has voluntarily
   * scheduled (called schedule(), or returned). The other CPUs run meanwhile.
   */
  waitFor(how: TaskSync): void {
    this.release(); // every task must get to run for the wait to end
    const live = this.cpus.filter((s) => !s.dead);
    const cpuMark = new Map(live.map((s) => [s, s.schedules]));
    const taskMark = new Map(live.flatMap((s) => s.tasks).map((t) => [t, t.voluntary]));
    const done = () =>
      how === 'schedule_on_each_cpu'
        ? live.every((s) => s.dead || s.schedules > cpuMark.get(s)!)
        : [...taskMark].every(([t, v]) => t.voluntary > v || this.cpus.find((s) => s.cpu === t.cpu)!.dead);
    for (let guard = 0; !done(); guard++) {
      if (guard > 1_000_000) throw new Error(`${how} never completed`);
      this.run(1);
    }
  }

  completions(cpu: number): number {
    return this.cpus.find((s) => s.cpu === cpu)?.tasks.reduce((a, t) => a + t.completions, 0) ?? 0;
  }
}
