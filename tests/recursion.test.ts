// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The list function's recursion guard is the task's, and preemption is
 * disabled around the walk only (v3.18 __ftrace_ops_list_func): a task
 * preempted while it holds its bit blocks only itself.
 */
import { disassemble, initDisassembler } from '../asm/disasm.js';
import { boot } from '../kernel-model/boot.js';
import { Smp } from '../kernel-model/smp/scheduler.js';

async function setup() {
  await initDisassembler();
  const booted = await boot({ functions: 0, cpus: 2, preempt: true });
  const { kernel, ftrace } = booted;
  const tracer = ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
  const probe = ftrace.createOps({ name: 'probe', callback: 'counter' });
  for (const o of [tracer, probe]) {
    ftrace.ftrace_set_filter(o, ['vfs_read']);
    ftrace.register_ftrace_function(o);
  }
  const smp = new Smp(booted, { seed: 1, preemptChance: 0 });
  const a = smp.start(1, { fn: 'sim_workload_syscalls', args: [2n, kernel.userBuffer + 0x1000n] });
  const b = smp.start(1, { fn: 'sim_workload_syscalls', args: [2n, kernel.userBuffer + 0x2000n] });
  const list = kernel.sym('ftrace_ops_list_func');
  const insns = disassemble(kernel.memory.read(list, 64), list, 12);
  return { kernel, ftrace, smp, a, b, tracer, insns, list };
}

test('a task preempted holding its recursion bit does not make another task skip its callbacks', async () => {
  const { kernel, smp, a, b, tracer, insns } = await setup();
  try {
    // Right after the bit is taken and before preempt_disable_notrace().
    const afterBit = insns.find((i) => i.mnemonic.startsWith('inc'))!.address;
    expect(smp.runUntil(1, (rip) => rip === afterBit)).toBe(true);
    expect(smp.current(1)).toBe(a);
    expect(smp.preempt(1)).toBe(true);
    expect(smp.current(1)).toBe(b);
    const before = tracer.invocations;
    const callback = kernel.sym('function_trace_call');
    // Task b reaches the callbacks through the list function while a still holds its own bit.
    expect(smp.runUntil(1, (rip) => rip === callback, 20_000)).toBe(true);
    expect(smp.current(1)).toBe(b);
    expect(a.saved?.get('rip')).toBe(afterBit);
    expect(tracer.invocations).toBe(before);
  } finally {
    kernel.close();
  }
});

test('inside the walk preemption is disabled: the timer interrupt does not switch tasks', async () => {
  const { kernel, smp, a } = await setup();
  try {
    const test = kernel.sym('ftrace_ops_test');
    expect(smp.runUntil(1, (rip) => rip === test)).toBe(true);
    expect(smp.preemptCount(1)).toBe(1n);
    expect(smp.preempt(1)).toBe(false);
    expect(smp.current(1)).toBe(a);
  } finally {
    kernel.close();
  }
});

describe('ftrace_ops_get_func(): an ops that is not recursion safe is called through the era helper', () => {
  test.each([
    ['3.18', 'ftrace_ops_recurs_func'],
    ['modern', 'ftrace_ops_assist_func'],
  ] as const)('%s: %s', async (era, helper) => {
    const { kernel, ftrace } = await boot({ functions: 0, era });
    try {
      const kp = ftrace.createOps({ name: 'kp', callback: 'kprobe_regs', flags: ['SAVE_REGS'] });
      expect(kp.hasFlag('RECURSION_SAFE')).toBe(false);
      ftrace.ftrace_set_filter(kp, ['vfs_read']);
      ftrace.register_ftrace_function(kp);
      expect(ftrace.arch.trampolineCallTarget(kp)).toBe(kernel.sym(helper));
      expect(ftrace.arch.ftraceCallTarget()).toBe(kernel.sym(helper));
      expect(ftrace.arch.checkTrampoline(kp)).toEqual([]);
      kernel.call('vfs_read', [kernel.sym('file_in'), kernel.userBuffer, 8n]);
      expect(kp.invocations).toBe(1n);
      // The function tracer's ops is recursion safe: its trampoline calls it directly.
      const tr = ftrace.createOps({ name: 'tr', callback: 'function_trace' });
      ftrace.ftrace_set_filter(tr, ['vfs_write']);
      ftrace.register_ftrace_function(tr);
      expect(ftrace.arch.trampolineCallTarget(tr)).toBe(tr.func);
    } finally {
      kernel.close();
    }
  });
});

test("a task preempted inside a static ops' trampoline survives its unregistering (the trampoline is kept)", async () => {
  const booted = await boot({ functions: 0, cpus: 2, preempt: true });
  const { kernel, ftrace } = booted;
  try {
    const tracer = ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
    ftrace.ftrace_set_filter(tracer, ['vfs_read']);
    ftrace.register_ftrace_function(tracer);
    const tramp = tracer.trampoline;
    expect(tramp).not.toBe(0n);
    const smp = new Smp(booted, { seed: 4, preemptChance: 0 });
    const a = smp.start(1, { fn: 'sim_workload_syscalls', args: [1n, kernel.userBuffer + 0x1000n] });
    smp.start(1, { fn: 'sim_workload_syscalls', args: [1n, kernel.userBuffer + 0x2000n] });
    smp.attach();
    expect(smp.runUntil(1, (rip) => rip >= tramp && rip < tramp + BigInt(tracer.trampolineSize) && rip > tramp + 8n)).toBe(true);
    expect(smp.preempt(1)).toBe(true);
    expect(ftrace.unregister_ftrace_function(tracer).ok).toBe(true);
    expect(tracer.trampoline).toBe(tramp);
    for (let i = 0; i < 2000 && a.completions === 0 && smp.faults.length === 0; i++) smp.run(1);
    smp.detach();
    expect(smp.faults).toEqual([]);
    expect(a.completions).toBeGreaterThan(0);
  } finally {
    kernel.close();
  }
});
