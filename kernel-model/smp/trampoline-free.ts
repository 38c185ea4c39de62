// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * When may a dynamic ops' trampoline be freed? Two tasks share CPU 1; one
 * of them is caught inside a kprobe-like dynamic ops' trampoline and, with
 * CONFIG_PREEMPT, preempted right there; the other runs a while without
 * calling schedule(). CPU 0 then unregisters the ops and
 * frees the trampoline after the wait KernelConfig.trampolineSync names:
 *  - none: the preempted task resumes in freed memory and faults;
 *  - schedule_on_each_cpu: CPU 1 schedules (the other task runs), so the
 *    wait ends while the preempted task is still inside: it faults too
 *    (enough only without preemption, where no task stops inside);
 *  - rcu_tasks: the wait ends once every task has scheduled voluntarily,
 *    which the preempted one only does after leaving the trampoline: safe.
 * The wait is the era's unless the caller names one. The dynamic ops gets
 * a trampoline in every era that has them, even where the kernel would
 * not give it one (v3.18, v3.19 with CONFIG_PREEMPT): the run then shows
 * why it did not.
 */
import { hex } from '../../emu/index.js';
import { boot } from '../boot.js';
import { eraRules } from '../ftrace/era.js';
import { ConfigError, resolveConfig, type Era, type KernelConfig } from '../kernel.js';
import { Smp } from './scheduler.js';

export interface TrampolineFreeOptions {
  era: Era;
  preempt: boolean;
  /** Default: the era's (KernelConfig.trampolineSync). */
  sync?: KernelConfig['trampolineSync'];
  seed: number;
}

export interface TrampolineFreeResult {
  options: Required<TrampolineFreeOptions>;
  /** Whether this era's kernel itself gives the dynamic ops a trampoline. */
  kernelWould: boolean;
  passed: boolean;
  trampoline: string;
  /** Where the caught task was when the trampoline was freed (or left when it was preempted). */
  caught: { task: number; rip: string; symbol: string | null; preempted: boolean };
  faults: { cpu: number; task: number; kind: string; rip: string; report: string }[];
  invocations: number;
  story: string[];
}

export async function trampolineFree(opts: TrampolineFreeOptions): Promise<TrampolineFreeResult> {
  const rules = eraRules(opts.era);
  if (!rules.trampolines) throw new ConfigError(`a ${rules.version} kernel has no trampolines to free`);
  const o = { ...opts, sync: opts.sync ?? rules.trampolineSync };
  const kernelWould = resolveConfig({ era: o.era, preempt: o.preempt }).dynamicTrampolines;
  const { kernel, ftrace } = await boot({
    functions: 20,
    cpus: 2,
    era: o.era,
    patching: 'int3',
    preempt: o.preempt,
    dynamicTrampolines: true,
    trampolineSync: o.sync,
  });
  const story: string[] = [];
  const config = o.preempt ? 'with CONFIG_PREEMPT' : 'without CONFIG_PREEMPT';
  story.push(
    kernelWould
      ? `a ${rules.version} kernel ${config} gives dynamic ops trampolines, freed after ${rules.trampolineSync}`
      : `a ${rules.version} kernel ${config} gives dynamic ops no trampoline; kp gets one here, to show why`,
  );
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: o.seed, quantum: [5, 60], preemptChance: 0 });
    // Task 0 makes system calls (fsnotify_access is on its read path); task 1
    // walks the call graph, which neither calls schedule() nor is traced by kp.
    smp.start(1, { fn: 'sim_workload_syscalls', args: [100000n, kernel.userBuffer + 0x1000n] });
    smp.start(1, { fn: 'sim_workload_callgraph', args: [300n, 1n] });
    const kp = ftrace.createOps({ name: 'kp', callback: 'counter', dynamic: true });
    ftrace.ftrace_set_filter(kp, ['fsnotify_access']);
    smp.attach();
    ftrace.register_ftrace_function(kp);
    const tramp = kp.trampoline;
    const size = BigInt(kp.trampolineSize);
    story.push(`kp (dynamic) registered on fsnotify_access with a trampoline at ${hex(tramp)}`);
    smp.run(50);
    const inside = (rip: bigint) => rip >= tramp && rip < tramp + size;
    if (!smp.runUntil(1, inside)) throw new Error('no task on CPU 1 ever entered the trampoline');
    const task = smp.current(1)!;
    const rip = kernel.machine.cpus[1]!.readReg('rip');
    const where = kernel.symbolize(rip) ?? null; // named while the trampoline still exists
    story.push(`task ${task.id} (pid ${task.pid}) on CPU 1 is inside it, at ${where ?? hex(rip)}`);
    if (o.preempt) {
      smp.preempt(1);
      story.push(`a timer interrupt preempts it there; task ${smp.current(1)!.id} runs on CPU 1 now`);
    } else story.push('without CONFIG_PREEMPT it keeps CPU 1 until it calls schedule()');
    ftrace.unregister_ftrace_function(kp);
    story.push(`kp unregistered; the trampoline was freed after waiting for: ${o.sync}`);
    ftrace.destroyOps(kp);
    smp.run(3000);
    const faults = smp.faults.map((f) => ({ cpu: f.cpu, task: f.task, kind: f.fault.kind, rip: hex(f.fault.rip), report: f.fault.report() }));
    story.push(faults.length ? `task ${faults[0]!.task} faulted at ${faults[0]!.rip}: ${faults[0]!.kind}` : 'every task ran on without a fault');
    return {
      options: o,
      kernelWould,
      passed: faults.length === 0,
      trampoline: hex(tramp),
      caught: { task: task.id, rip: hex(rip), symbol: where, preempted: o.preempt },
      faults,
      invocations: Number(kp.invocations),
      story,
    };
  } finally {
    kernel.close();
  }
}
