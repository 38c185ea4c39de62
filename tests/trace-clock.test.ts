// SPDX-License-Identifier: GPL-2.0-or-later
/* The trace clock: each CPU's guest instruction count, stamped by the guest into every ring-buffer entry. */
import { boot } from '../kernel-model/boot.js';
import { Smp } from '../kernel-model/smp/scheduler.js';
import { TRACE_CLOCK_HEADER, TraceBuffer } from '../kernel-model/trace/ring-buffer.js';
import { traceClockFile, traceFile } from '../kernel-model/views/tracefs.js';

const TARGET = 'fsnotify_access';

/** A kernel with the function tracer on TARGET only. */
async function traced(cpus = 1) {
  const k = await boot({ functions: 10, cpus });
  const tracer = k.ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
  expect(k.ftrace.ftrace_set_filter(tracer, [TARGET]).ok).toBe(true);
  expect(k.kernel.clock.running).toBe(false);
  k.ftrace.register_ftrace_function(tracer);
  // A registered tracer writes the ring buffer: the clock runs from then on.
  expect(k.kernel.clock.running).toBe(true);
  return k;
}

test('two traced calls in a row are as far apart on the clock as the guest instructions between them', async () => {
  const { kernel } = await traced();
  try {
    const loop = kernel.sym('sim_call_n');
    const args = (n: bigint) => [kernel.sym(TARGET), n, kernel.sym('file_in')];
    // One more loop iteration (one more traced call) is the work between two events, counted by a code hook on every instruction.
    const counter = kernel.machine.cpu.addInstructionCounter();
    kernel.call(loop, args(1n));
    const one = counter.count();
    counter.reset();
    kernel.call(loop, args(2n));
    const iteration = counter.count() - one;
    kernel.machine.cpu.removeHook(counter.handle);
    expect(iteration).toBeGreaterThan(10);

    const before = new TraceBuffer(kernel).written;
    kernel.call(loop, args(4n));
    const { events } = new TraceBuffer(kernel).read(before);
    expect(events.map((e) => kernel.symbols.format(e.ip, { short: true }))).toEqual([TARGET, TARGET, TARGET, TARGET]);
    const gaps = events.slice(1).map((e, i) => e.ts - events[i]!.ts);
    expect(gaps).toEqual([BigInt(iteration), BigInt(iteration), BigInt(iteration)]);
  } finally {
    kernel.close();
  }
});

/** Runs the same two-CPU workload; returns every event's cpu, seq and timestamp. */
async function twoCpuRun(): Promise<{ cpu: number; seq: bigint; ts: bigint }[]> {
  const { kernel, ftrace } = await traced(2);
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: 7 });
    smp.start(1, { fn: 'sim_workload_syscalls', args: [3n, kernel.userBuffer + 0x1000n] });
    for (let i = 0; i < 400 && smp.completions(1) === 0; i++) smp.run(1);
    for (let i = 0; i < 3; i++) kernel.call('vfs_read', [kernel.sym('file_in'), kernel.userBuffer, 8n]);
    return new TraceBuffer(kernel).read(0n).events.map((e) => ({ cpu: e.cpu, seq: e.seq, ts: e.ts }));
  } finally {
    kernel.close();
  }
}

test('timestamps strictly increase on each CPU, and the same run gives the same timestamps', async () => {
  const first = await twoCpuRun();
  for (const cpu of [0, 1]) {
    const mine = first.filter((e) => e.cpu === cpu);
    expect(mine.length).toBeGreaterThan(1);
    for (let i = 1; i < mine.length; i++) expect(mine[i]!.ts).toBeGreaterThan(mine[i - 1]!.ts);
  }
  expect(await twoCpuRun()).toEqual(first);
});

test('the trace file names its clock in its header, and trace_clock lists it selected', async () => {
  const { kernel, ftrace } = await traced();
  try {
    kernel.call(TARGET, [kernel.sym('file_in')]);
    const lines = traceFile(kernel, ftrace).split('\n');
    expect(lines[0]).toBe('# tracer: function');
    expect(lines[1]).toBe(TRACE_CLOCK_HEADER);
    expect(TRACE_CLOCK_HEADER).toMatch(/^# trace clock: counter \(guest instructions/);
    expect(traceClockFile()).toBe('[counter]\n');
  } finally {
    kernel.close();
  }
});

test('with instructionClock the clock runs from boot', async () => {
  const { kernel } = await boot({ functions: 4, instructionClock: true });
  try {
    expect(kernel.clock.running).toBe(true);
    kernel.call(TARGET, [kernel.sym('file_in')]);
    expect(kernel.clock.now(0)).toBeGreaterThan(0n);
  } finally {
    kernel.close();
  }
});
