// SPDX-License-Identifier: GPL-2.0-or-later
/* tracefs files and explain, compared with golden text (addresses normalised, as uftrace's tests do). */
import { explainFunction } from '../kernel-model/views/explain.js';
import { availableFilterFunctions, enabledFunctions, setFtraceHash, traceFile } from '../kernel-model/views/tracefs.js';
import { loadScenarioText } from '../scenarios/engine/load.js';
import { inspectScenario } from '../scenarios/engine/run.js';

const norm = (s: string) => s.replace(/0x[0-9a-f]{8,16}/g, '<addr>');

const scenario = loadScenarioText(
  `name: golden
config: { functions: 4 }
ops:
  - { name: tracer, callback: function_trace }
  - { name: kp, callback: kprobe_regs, flags: [SAVE_REGS], dynamic: true }
steps:
  - set_filter: { ops: tracer, patterns: ["vfs_*", "*sync_read", "fsnotify_access"] }
  - set_notrace: { ops: tracer, patterns: [vfs_write] }
  - set_filter: { ops: kp, patterns: [vfs_read] }
  - register: tracer
  - register: kp
  - call: vfs_read
`,
  'golden.yaml',
);

test('the tracefs files show guest state in the kernel formats', async () => {
  await inspectScenario(scenario, undefined, ({ kernel, ftrace, ops }) => {
    const aff = availableFilterFunctions(kernel, ftrace).split('\n');
    expect(aff.slice(0, 3)).toEqual(['do_syscall_64', 'sys_ni_syscall', '__x64_sys_read']);
    expect(aff).toContain('gen_func_3');
    expect(aff.length - 1).toBe(ftrace.records.length);

    expect(norm(enabledFunctions(kernel, ftrace))).toBe(
      [
        // v3.18 t_show(): "%ps" " (%ld)%s" and, for TRAMP_EN, "\ttramp: %pS" (a trampoline has no symbol)
        'vfs_read (2) R',
        'new_sync_read (1)  \ttramp: <addr>',
        'fsnotify_access (1)  \ttramp: <addr>',
        '',
      ].join('\n'),
    );
    expect(setFtraceHash(kernel, ops.get('tracer')!, 'filter')).toBe('vfs_read\nnew_sync_read\nvfs_write\nfsnotify_access\n');
    expect(setFtraceHash(kernel, ops.get('tracer')!, 'notrace')).toBe('vfs_write\n');
    expect(setFtraceHash(kernel, ops.get('kp')!, 'notrace')).toBe('#### no functions disabled ####\n');

    const trace = traceFile(kernel).split('\n');
    expect(trace[0]).toBe('# tracer: function');
    expect(trace[1]).toBe('# trace clock: counter (guest instructions run by each CPU; TIMESTAMP shows one as 1 us)');
    expect(trace[3]).toBe('# entries-in-buffer/entries-written: 3/3   #P:1');
    // "%16s-%-5d [%03d] " + 4 latency flags + " %5lu.%06lu: " (the trace clock, one guest instruction a µs), then "%ps <-%ps".
    expect(trace.slice(12, 15)).toEqual([
      '           sim/0-1     [000] ....     0.000224: vfs_read <-__sim_return',
      '           sim/0-1     [000] ....     0.000325: new_sync_read <-vfs_read',
      '           sim/0-1     [000] ....     0.000472: fsnotify_access <-vfs_read',
    ]);
  });
});

test('enabled_functions in the modern era: " (%ld)%s%s%s" (R, I, D), "\\ttramp: %pS (%pS)" and " ->%pS"', async () => {
  const modern = loadScenarioText(
    `name: golden-modern
config: { functions: 4, era: modern }
eras: [modern]
ops:
  - { name: tracer, callback: function_trace }
  - { name: kp, callback: kprobe_regs, flags: [SAVE_REGS, IPMODIFY], dynamic: true }
steps:
  - set_filter: { ops: tracer, patterns: ["vfs_read", "fsnotify_access"] }
  - set_filter: { ops: kp, patterns: [vfs_read] }
  - register: tracer
  - register: kp
`,
    'golden-modern.yaml',
  );
  await inspectScenario(modern, undefined, ({ kernel, ftrace }) => {
    const size = (n: string) => `0x${kernel.symbols.get(n)!.size.toString(16)}`;
    expect(norm(enabledFunctions(kernel, ftrace))).toBe(
      [
        `vfs_read (2) R I   ->ftrace_ops_list_func+0x0/${size('ftrace_ops_list_func')}`,
        `fsnotify_access (1)      \ttramp: <addr> (function_trace_call+0x0/${size('function_trace_call')}) ->function_trace_call+0x0/${size('function_trace_call')}`,
        '',
      ].join('\n'),
    );
  });
});

test('explain: a v3.18 trampoline, byte by byte, and the path to each callback', async () => {
  await inspectScenario(scenario, undefined, ({ kernel, ftrace }) => {
    const tramp = explainFunction(kernel, ftrace, 'new_sync_read');
    expect(tramp.target).toBe('trampoline(tracer)');
    expect(tramp.stages.map((s) => s.bytes.slice(0, 2))).toEqual(['e8', '0f', 'e8']);
    const t = tramp.trampoline!;
    // The layout v3.18's create_trampoline makes of a v3.18 ftrace_caller: 139 bytes copied,
    // jmp ftrace_return at +139, the ops pointer at +144, the op load at +58, the call at +92.
    expect(t.size).toBe(152);
    const at = (o: number) => t.lines.find((l) => l.offset === o)!;
    expect(at(58).bytes).toBe('48 8b 15 4f 00 00 00');
    expect(at(58).note).toMatch(/was <addr> <function_trace_op>|was 0x[0-9a-f]+ <function_trace_op>/);
    expect(at(92).instruction).toMatch(/<function_trace_call\+0x0>/);
    expect(at(139).instruction).toMatch(/jmp .*<ftrace_return\+0x0>/);
    expect(at(144).instruction).toBe(`.quad 0x${kernel.memory.readU64(t.address + 144n).toString(16)}`);
    expect(tramp.path[1]).toBe('ftrace_trampoline[tracer]');
    expect(tramp.callbacks).toEqual([expect.objectContaining({ callback: 'function_trace_call', ops: 'tracer', ownOps: true, rcx: 0n })]);

    const probed = explainFunction(kernel, ftrace, 'vfs_read');
    expect(probed.target).toBe('ftrace_regs_caller');
    expect(probed.trampoline).toBeNull();
    expect(probed.path).toContain('ftrace_ops_list_func');
    expect(probed.callbacks.map((c) => [c.callback, c.ops, c.ownOps])).toEqual([
      ['kprobe_ftrace_handler', 'kp', true],
      ['function_trace_call', 'tracer', true],
    ]);
    expect(probed.callbacks.every((c) => c.rdi === ftrace.recordOf('vfs_read')!.ip && c.rcx !== 0n)).toBe(true);
  });
});
