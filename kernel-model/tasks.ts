// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tasks as the graph tracer sees them: a struct task_struct in guest memory
 * per task (the init task of each CPU in kernel data, the others
 * kmalloc'd), its return stack, and `current`, the per-CPU pointer to the
 * task that runs there, which the scheduler switches with the task.
 */
import type { GuestMemory } from '../emu/index.js';
import { FTRACE_NOTRACE_DEPTH, FTRACE_RETFUNC_DEPTH, PERCPU, PERCPU_BASE, PERCPU_STRIDE, RET_STACK, TASK } from './abi.js';
import type { DataLayout, RangeAllocator } from './allocator.js';

export const MAX_INIT_TASKS = 8;

export function placeTaskData(l: DataLayout): void {
  l.place('init_task', MAX_INIT_TASKS * TASK.SIZE, 64);
}

/** One entry of a task's return stack, decoded. */
export interface RetStackEntry {
  ret: bigint;
  func: bigint;
  calltime: bigint;
  retp: bigint;
}

export class Tasks {
  private readonly byPid = new Map<number, bigint>();

  constructor(
    private readonly memory: GuestMemory,
    private readonly kmalloc: RangeAllocator,
    private readonly initTask: bigint,
  ) {}

  /** The init task of each CPU (pid cpu + 1), `current` there at boot. */
  initCpus(cpus: number): void {
    for (let c = 0; c < cpus; c++) {
      const t = this.initTask + BigInt(c * TASK.SIZE);
      this.setup(t, c + 1);
      this.memory.writeU64(PERCPU_BASE + BigInt(c * PERCPU_STRIDE + PERCPU.CURRENT_TASK), t);
    }
  }

  private setup(t: bigint, pid: number): void {
    this.memory.fill(t, TASK.SIZE, 0);
    this.memory.writeU64(t + BigInt(TASK.PID), BigInt(pid));
    this.memory.writeU64(t + BigInt(TASK.CURR_RET_STACK), BigInt.asUintN(64, -1n));
    this.byPid.set(pid, t);
  }

  /** copy_process(): a new task_struct; it gets a return stack at once if the graph tracer runs. */
  create(pid: number, withRetStack: boolean): bigint {
    const t = this.kmalloc.alloc(TASK.SIZE);
    if (t === undefined) throw new Error('kmalloc: no memory for a task_struct');
    this.setup(t, pid);
    if (withRetStack) this.allocRetStack(t);
    return t;
  }

  get(pid: number): bigint | undefined {
    return this.byPid.get(pid);
  }

  all(): [pid: number, task: bigint][] {
    return [...this.byPid];
  }

  /** Makes `task` current on `cpu` (what a context switch does to the per-CPU pointer). */
  setCurrent(cpu: number, task: bigint): void {
    this.memory.writeU64(PERCPU_BASE + BigInt(cpu * PERCPU_STRIDE + PERCPU.CURRENT_TASK), task);
  }

  current(cpu: number): bigint {
    return this.memory.readU64(PERCPU_BASE + BigInt(cpu * PERCPU_STRIDE + PERCPU.CURRENT_TASK));
  }

  /** ftrace_graph_init_task / alloc_retstack_tasklist: a return stack, once; it is never freed while the task lives. */
  allocRetStack(t: bigint): void {
    if (this.memory.readU64(t + BigInt(TASK.RET_STACK)) !== 0n) return;
    const size = FTRACE_RETFUNC_DEPTH * RET_STACK.SIZE;
    const rs = this.kmalloc.alloc(size);
    if (rs === undefined) throw new Error('kmalloc: no memory for a ret_stack');
    this.memory.fill(rs, size, 0);
    this.memory.writeU64(t + BigInt(TASK.CURR_RET_STACK), BigInt.asUintN(64, -1n));
    this.memory.writeU64(t + BigInt(TASK.RET_STACK), rs);
  }

  /** curr_ret_stack as a signed number (-1: empty). */
  currRetStack(t: bigint): number {
    return Number(BigInt.asIntN(64, this.memory.readU64(t + BigInt(TASK.CURR_RET_STACK))));
  }

  /** The live entries of a task's return stack, bottom first. */
  retStack(t: bigint): RetStackEntry[] {
    const rs = this.memory.readU64(t + BigInt(TASK.RET_STACK));
    if (rs === 0n) return [];
    let top = this.currRetStack(t);
    if (top < -1) top += FTRACE_NOTRACE_DEPTH;
    const out: RetStackEntry[] = [];
    for (let i = 0; i <= top && i < FTRACE_RETFUNC_DEPTH; i++) {
      const e = rs + BigInt(i * RET_STACK.SIZE);
      const m = this.memory;
      out.push({ ret: m.readU64(e + BigInt(RET_STACK.RET)), func: m.readU64(e + BigInt(RET_STACK.FUNC)), calltime: m.readU64(e + BigInt(RET_STACK.CALLTIME)), retp: m.readU64(e + BigInt(RET_STACK.RETP)) });
    }
    return out;
  }
}
