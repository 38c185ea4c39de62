// SPDX-License-Identifier: GPL-2.0-or-later
/* The function graph tracer: its trace format against the kernel's, its patch site, its return stacks. */
import { boot } from '../kernel-model/boot.js';
import { RET_STACK } from '../kernel-model/abi.js';
import { graphTorture } from '../kernel-model/smp/graph-torture.js';
import { patchRace } from '../kernel-model/smp/patch-race.js';
import { Smp } from '../kernel-model/smp/scheduler.js';
import { TASK } from '../kernel-model/abi.js';
import { buildForest, checkReturns, parseTree, treeDifference } from '../kernel-model/trace/graph-tree.js';
import { TraceBuffer } from '../kernel-model/trace/ring-buffer.js';
import { explainFunction } from '../kernel-model/views/explain.js';
import { GRAPH_HEADER, formatGraphDuration, graphDurationColumn, graphTraceFile, graphTracefsFile } from '../kernel-model/views/graph-trace.js';
import { initDisassembler } from '../asm/disasm.js';

beforeAll(async () => {
  await initDisassembler();
});

/*
 * The format pieces of kernel/trace/trace_functions_graph.c (v3.18) with
 * the default flags (CPU, OVERHEAD, DURATION): the header's seq_printf()s,
 * print_graph_cpu()'s " %*d) ", FLAGS_FILL_FULL's bar, the "%ps() {\n",
 * "%ps();\n" and "}\n" of the entry, leaf and return lines, and
 * TRACE_GRAPH_INDENT = 2.
 */
const KERNEL = {
  header1: '#' + ' CPU' + '  DURATION   ' + '               FUNCTION CALLS',
  header2: '#' + ' |  ' + '   |   |      ' + '               |   |   |   |',
  fillFull: '              |  ',
  indent: 2,
};

describe('the function_graph trace format', () => {
  test('durations print as trace_print_graph_duration() and print_graph_duration() do', () => {
    expect(formatGraphDuration(0n)).toBe('0.000 us    ');
    expect(formatGraphDuration(113n)).toBe('0.113 us    ');
    expect(formatGraphDuration(1234567n)).toBe('1234.567 us ');
    expect(formatGraphDuration(12345678n)).toBe('12345.67 us ');
    expect(formatGraphDuration(1234567890n)).toBe('1234567 us ');
    expect(graphDurationColumn(10000n)).toBe('  10.000 us   |  ');
    expect(graphDurationColumn(10001n)).toBe('+ 10.001 us   |  ');
    expect(graphDurationColumn(100001n)).toBe('! 100.001 us  |  ');
    // Every duration column is as wide as the empty one of a nested entry.
    for (const d of [0n, 999n, 10001n, 123456n, 9999999n]) expect(graphDurationColumn(d).length).toBe(KERNEL.fillFull.length);
  });

  test('golden: a read through the graph tracer, as the kernel prints it', async () => {
    const { kernel, ftrace } = await boot({ functions: 4, instructionClock: true });
    try {
      const g = ftrace.createOps({ name: 'graph', callback: 'function_graph' });
      expect(ftrace.graph.register(g)).toEqual({ ok: true });
      expect(kernel.call('ksys_read', [3n, kernel.userBuffer, 64n])).toBe(64n);
      const text = graphTraceFile(kernel);
      const lines = text.split('\n');
      expect(lines.slice(0, 4)).toEqual(['# tracer: function_graph', '#', KERNEL.header1, KERNEL.header2]);
      expect(GRAPH_HEADER).toEqual([KERNEL.header1, KERNEL.header2]);
      const body = lines.slice(4, -1);
      const shape = body.map((l) => l.replace(/^ 0\) (.{17})/, (_m, col: string) => (col === KERNEL.fillFull ? '[    ]' : `[${col[0]}dur]`)));
      expect(shape).toEqual([
        '[    ]ksys_read() {',
        '[ dur]  fdget_pos();',
        '[    ]  vfs_read() {',
        '[ dur]    rw_verify_area();',
        '[    ]    new_sync_read() {',
        '[ dur]      copy_to_user();',
        '[ dur]    }',
        '[ dur]    fsnotify_access();',
        '[ dur]  }',
        '[ dur]  fdput_pos();',
        '[ dur]}',
      ]);
      // The printed durations are the guest clock's: rettime - calltime of each return event.
      const { events } = new TraceBuffer(kernel).read(0n);
      const copy = events.find((e) => e.graph === 'return' && kernel.symbolize(e.ip) === 'copy_to_user+0x0')!;
      expect(body[5]).toBe(` 0) ${graphDurationColumn(copy.aux1 - copy.aux0)}${' '.repeat(3 * KERNEL.indent)}copy_to_user();`);
      expect(copy.aux1 - copy.aux0).toBeGreaterThan(0n);
      expect(graphTracefsFile(kernel, 'set_graph_function')).toBe('#### all functions enabled ####\n');
      expect(graphTracefsFile(kernel, 'max_graph_depth')).toBe('0\n');
      expect(ftrace.graph.configure({ functions: ['vfs_read', 'ksys_*'], maxDepth: 3 })).toEqual({ ok: true });
      expect(graphTracefsFile(kernel, 'set_graph_function')).toBe('ksys_read\nksys_write\nvfs_read\n');
      expect(graphTracefsFile(kernel, 'max_graph_depth')).toBe('3\n');
    } finally {
      kernel.close();
    }
  });
});

test('overhead marks: a call tree of over 10 us (10,000 guest instructions) gets its +', async () => {
  const { kernel, ftrace } = await boot({ functions: 2000, instructionClock: true });
  try {
    ftrace.graph.register(ftrace.createOps({ name: 'graph', callback: 'function_graph' }));
    kernel.call('gen_func_1999', [1n]);
    const body = graphTraceFile(kernel).split('\n').slice(4, -1);
    const marked = body.filter((l) => /^ 0\) \+ /.test(l));
    expect(marked.length).toBeGreaterThan(0);
    expect(body[body.length - 1]).toMatch(/^ 0\) \+ +\d+\.\d+ us +\|  \}$/);
    // Each line's mark is the one its own duration calls for (one comparison: thousands of lines).
    const got: string[] = [];
    const want: string[] = [];
    for (const l of body) {
      const m = /^ 0\) (.) +(\d+)\.(\d+) us/.exec(l);
      if (!m) continue;
      const ns = BigInt(m[2]!) * 1000n + BigInt(m[3]!.padEnd(3, '0'));
      got.push(`${m[1]} ${l}`);
      want.push(`${ns > 100000n ? '!' : ns > 10000n ? '+' : ' '} ${l}`);
    }
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(want);
  } finally {
    kernel.close();
  }
});

test('ftrace_graph_call is switched between ftrace_stub and ftrace_graph_caller, and explain shows the hooked slot', async () => {
  const { kernel, ftrace } = await boot({ functions: 4 });
  try {
    const sym = (n: string) => kernel.sym(n);
    expect(ftrace.arch.ftraceGraphCallTarget()).toBe(sym('ftrace_stub'));
    const g = ftrace.createOps({ name: 'graph', callback: 'function_graph' });
    ftrace.graph.register(g);
    expect(ftrace.arch.ftraceGraphCallTarget()).toBe(sym('ftrace_graph_caller'));
    const e = explainFunction(kernel, ftrace, 'vfs_read');
    expect(e.graph).not.toBeNull();
    expect(e.graph!.before).toBe(kernel.machine.sentinel); // the host's call of vfs_read
    expect(e.graph!.after).toBe(sym('return_to_handler'));
    expect(e.graph!.returnedTo).toBe(e.graph!.before);
    expect(e.path).toEqual(expect.arrayContaining(['ftrace_graph_caller', 'prepare_ftrace_return']));
    ftrace.graph.unregister(g);
    expect(ftrace.arch.ftraceGraphCallTarget()).toBe(sym('ftrace_stub'));
    expect(explainFunction(kernel, ftrace, 'vfs_read').graph).toBeNull();
  } finally {
    kernel.close();
  }
});

test('modern: the graph tracer is an ops with its own callback, and there is no ftrace_graph_call', async () => {
  const { kernel, ftrace } = await boot({ functions: 4, era: 'modern' });
  try {
    const g = ftrace.createOps({ name: 'graph', callback: 'function_graph' });
    ftrace.graph.register(g);
    expect(ftrace.arch.ftraceGraphCallTarget()).toBeUndefined();
    expect(kernel.symbols.get('ftrace_graph_call')).toBeUndefined();
    expect(g.func).toBe(kernel.sym('ftrace_graph_func'));
    expect(ftrace.arch.trampolineCallTarget(g)).toBe(kernel.sym('ftrace_graph_func'));
    expect(ftrace.arch.checkTrampoline(g)).toEqual([]);
    kernel.call('ksys_read', [3n, kernel.userBuffer, 64n]);
    const forest = buildForest(kernel, new TraceBuffer(kernel).read(0n).events);
    expect(treeDifference(forest.roots[0]!, parseTree('ksys_read > [fdget_pos, vfs_read > [rw_verify_area, new_sync_read > copy_to_user, fsnotify_access], fdput_pos]'))).toBeUndefined();
    expect(checkReturns(kernel, forest)).toEqual([]);
  } finally {
    kernel.close();
  }
});

test('returns: a return whose ret_stack entry was tampered with is caught from the guest records', async () => {
  const { kernel, ftrace } = await boot({ functions: 4 });
  try {
    const g = ftrace.createOps({ name: 'graph', callback: 'function_graph' });
    ftrace.graph.register(g);
    kernel.call('ksys_read', [3n, kernel.userBuffer, 64n]);
    let forest = buildForest(kernel, new TraceBuffer(kernel).read(0n).events);
    expect(checkReturns(kernel, forest)).toEqual([]);
    expect(forest.orphanReturns).toEqual([]);
    expect(treeDifference(forest.roots[0]!, parseTree('ksys_read > [fdget_pos, vfs_read > [rw_verify_area, new_sync_read > copy_to_user, fsnotify_access], fdput_pos]'))).toBeUndefined();
    // While copy_to_user runs, make its ret_stack entry name another function: its return no longer matches its entry.
    const cpu = kernel.machine.cpu;
    const at = kernel.sym('copy_to_user') + 5n;
    const h = cpu.addCodeHook(() => {
      const t = kernel.tasks.current(0);
      const top = kernel.tasks.retStack(t).length - 1;
      const rs = kernel.memory.readU64(t + 16n);
      kernel.memory.writeU64(rs + BigInt(top * RET_STACK.SIZE + RET_STACK.FUNC), kernel.sym('fsnotify_access'));
    }, at, at);
    const from = new TraceBuffer(kernel).written;
    kernel.call('ksys_read', [3n, kernel.userBuffer, 64n]);
    cpu.removeHook(h);
    forest = buildForest(kernel, new TraceBuffer(kernel).read(from).events);
    expect(forest.orphanReturns.length).toBeGreaterThan(0);
    expect(kernel.tasks.currRetStack(kernel.tasks.current(0))).toBe(-1);
  } finally {
    kernel.close();
  }
});

describe('the graph tracer on several CPUs', () => {
  test('patch-race --graph: the int3 protocol patches ftrace_graph_call safely too', async () => {
    const r = await patchRace({ cpus: 3, patching: 'int3', era: '3.18', seed: 2, rounds: 3, graph: true });
    expect(r.faults).toEqual([]);
    expect(r.graphKilled).toBe(false);
    expect(r.graphEvents).toBeGreaterThan(0);
    expect(r.passed).toBe(true);
  });

  test('torture --graph: tasks preempted inside hooked functions keep balanced ret_stacks; the same seed replays', async () => {
    const a = await graphTorture({ cpus: 3, changes: 80, seed: 5, era: '3.18' });
    expect(a.violations).toEqual([]);
    expect(a.hookedAtUnregister).toBeGreaterThan(0); // the graph tracer did go away under hooked returns
    expect(a.graphReturns).toBeGreaterThan(0);
    const b = await graphTorture({ cpus: 3, changes: 80, seed: 5, era: '3.18' });
    expect({ ...b, changesPerSecond: 0 }).toEqual({ ...a, changesPerSecond: 0 });
  });
});

test('a task whose ret_stack is lost while its returns are hooked ends in ftrace_graph_panic, and the graph tracer stops', async () => {
  const { kernel, ftrace } = await boot({ functions: 60, cpus: 2, preempt: true });
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: 4, quantum: [5, 40] });
    const task = smp.start(1, { fn: 'sim_workload_callgraph', args: [50n, 1n] });
    ftrace.graph.register(ftrace.createOps({ name: 'graph', callback: 'function_graph' }));
    const rth = kernel.sym('return_to_handler');
    const hooked = () => {
      const w = smp.where(task);
      let n = 0;
      if (w) for (let a = w.rsp; a < task.stackTop; a += 8n) if (kernel.memory.readU64(a) === rth) n++;
      return n;
    };
    for (let i = 0; i < 2000 && !(hooked() >= 2 && !ftrace.inFtraceCode(smp.where(task)!.rip)); i++) smp.run(1);
    expect(hooked()).toBeGreaterThanOrEqual(2);
    expect(kernel.tasks.retStack(task.taskStruct)).toHaveLength(hooked());
    // The bug: the task's return stack forgotten (curr_ret_stack back to -1) while its stack still holds hooked returns.
    kernel.memory.writeU64(task.taskStruct + BigInt(TASK.CURR_RET_STACK), BigInt.asUintN(64, -1n));
    for (let i = 0; i < 2000 && smp.faults.length === 0; i++) smp.run(1);
    expect(smp.faults).toHaveLength(1);
    expect(smp.faults[0]!.fault.symbol).toMatch(/^ftrace_graph_panic/);
    expect(ftrace.graph.dead).toBe(true);
  } finally {
    kernel.close();
  }
});

test('two tasks on one CPU: trees per task, and the trace marks each switch as verif_pid() does', async () => {
  const { kernel, ftrace } = await boot({ functions: 20, cpus: 2, preempt: true });
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: 4, quantum: [5, 60] });
    const a = smp.start(1, { fn: 'sim_workload_callgraph', args: [2n, 1n] });
    const b = smp.start(1, { fn: 'sim_workload_syscalls', args: [1n, kernel.userBuffer] });
    ftrace.graph.register(ftrace.createOps({ name: 'graph', callback: 'function_graph' }));
    smp.run(60);
    const forest = buildForest(kernel, new TraceBuffer(kernel).read(0n).events);
    expect(forest.orphanReturns).toEqual([]);
    expect(checkReturns(kernel, forest)).toEqual([]);
    expect(new Set(forest.roots.map((r) => r.pid))).toEqual(new Set([a.pid, b.pid]));
    const lines = graphTraceFile(kernel, 2).split('\n');
    const box = lines.indexOf(' ------------------------------------------');
    expect(box).toBeGreaterThan(3);
    // comm is cut to 7 characters ("ftrace-"), then -pid, centred in 14 columns.
    expect(lines[box + 1]).toMatch(/^ 1\) {2}ftrace--10[01] {3}=> {2}ftrace--10[01] {2}$/);
    expect(lines.slice(box + 2, box + 4)).toEqual([' ------------------------------------------', '']);
  } finally {
    kernel.close();
  }
});
