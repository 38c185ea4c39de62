// SPDX-License-Identifier: GPL-2.0-or-later
/* The trace file's context columns come from the guest's own records: task, pid, CPU, CPUs online. */
import { boot } from '../kernel-model/boot.js';
import { Smp } from '../kernel-model/smp/scheduler.js';
import { TraceBuffer } from '../kernel-model/trace/ring-buffer.js';
import { traceFile } from '../kernel-model/views/tracefs.js';

test('events from a task on another CPU carry its pid, its comm and that CPU; #P counts the CPUs', async () => {
  const { kernel, ftrace } = await boot({ functions: 10, cpus: 2 });
  try {
    const tracer = ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
    ftrace.ftrace_set_filter(tracer, ['vfs_read']);
    ftrace.register_ftrace_function(tracer);
    const smp = new Smp({ kernel, ftrace }, { seed: 5 });
    const task = smp.start(1, { fn: 'sim_workload_syscalls', args: [3n, kernel.userBuffer + 0x1000n] });
    for (let i = 0; i < 400 && smp.completions(1) === 0; i++) smp.run(1);
    kernel.call('vfs_read', [kernel.sym('file_in'), kernel.userBuffer, 8n]);
    const { events } = new TraceBuffer(kernel).read(0n);
    const remote = events.filter((e) => e.cpu === 1);
    const local = events.filter((e) => e.cpu === 0);
    expect(remote.length).toBeGreaterThan(0);
    expect(local.length).toBe(1);
    expect(remote.every((e) => e.pid === task.pid)).toBe(true);
    expect(local[0]!.pid).toBe(1);
    // Each CPU's clock only goes forward (trace_clock_local(): CPUs count apart).
    for (const mine of [remote, local]) for (let i = 1; i < mine.length; i++) expect(mine[i]!.ts).toBeGreaterThan(mine[i - 1]!.ts);
    const text = traceFile(kernel, ftrace);
    expect(text).toContain('#P:2');
    expect(text).toMatch(new RegExp(`\\n {8}syscalls-${task.pid} +\\[001\\] \\.\\.\\.\\. +\\d+\\.\\d{6}: vfs_read <-`));
    expect(text).toMatch(/\n {11}sim\/0-1 +\[000\] \.\.\.\. +\d+\.\d{6}: vfs_read <-__sim_return/);
  } finally {
    kernel.close();
  }
});
