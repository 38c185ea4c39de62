// SPDX-License-Identifier: GPL-2.0-or-later
/* The four kernels: their entry code, their trampolines, and the scenarios that tell them apart. */
import { initDisassembler } from '../asm/disasm.js';
import { GuestFault } from '../emu/index.js';
import { FTRACE_NOP5 } from '../kernel-model/arch/x86/insn.js';
import { eraRules } from '../kernel-model/ftrace/era.js';
import { ERAS, coreSourceFiles } from '../kernel-model/kernel.js';
import { loadScenarioFile, loadScenarioText } from '../scenarios/engine/load.js';
import { inspectScenario, runScenario } from '../scenarios/engine/run.js';
import type { Comparison } from '../scenarios/engine/compare.js';
import { cli, withKernel } from './helpers.js';

test("each era assembles its own entry code, with the markers only trampolines need", async () => {
  expect(coreSourceFiles('3.17')[0]).toBe('v3.17/mcount_64.S');
  expect(coreSourceFiles('3.19')[0]).toBe('v3.18/mcount_64.S');
  expect(coreSourceFiles('modern')[0]).toBe('v6/ftrace_64.S');
  for (const era of ERAS) {
    await withKernel({ functions: 0, era }, ({ kernel }) => {
      const has = (s: string) => kernel.symbols.get(s) !== undefined;
      expect([era, has('ftrace_caller_op_ptr'), has('ftrace_caller_end')]).toEqual([era, eraRules(era).trampolines, eraRules(era).trampolines]);
      expect([era, has('ftrace_graph_call')]).toEqual([era, era !== 'modern']);
      expect([era, has('ftrace_regs_caller_jmp')]).toEqual([era, era === 'modern']);
    });
  }
});

test('v3.17: one ops is called straight from ftrace_call, two go through the list function, and there is no trampoline', async () => {
  await withKernel({ functions: 4, era: '3.17' }, ({ kernel, ftrace }) => {
    const a = ftrace.createOps({ name: 'a', callback: 'counter', flags: ['RECURSION_SAFE'] });
    ftrace.register_ftrace_function(a);
    expect(a.trampoline).toBe(0n);
    expect(ftrace.arch.ftraceCallTarget()).toBe(a.func);
    expect(ftrace.siteTarget(ftrace.recordOf('vfs_read')!).kind).toBe('ftrace_caller');
    const b = ftrace.createOps({ name: 'b', callback: 'counter' });
    ftrace.ftrace_set_filter(b, ['vfs_read']);
    ftrace.register_ftrace_function(b);
    expect(ftrace.arch.ftraceCallTarget()).toBe(kernel.sym('ftrace_ops_list_func'));
    expect(kernel.moduleSpace!.bytesInUse).toBe(0);
  });
});

test("v6: a trampoline ends in a RET, its regs caller's jnz is a NOP, its call is written at creation, and the guest cannot write it", async () => {
  await initDisassembler();
  await withKernel({ functions: 4, era: 'modern' }, ({ kernel, ftrace }) => {
    const kp = ftrace.createOps({ name: 'kp', callback: 'kprobe_regs', flags: ['SAVE_REGS'] });
    ftrace.ftrace_set_filter(kp, ['vfs_read']);
    ftrace.register_ftrace_function(kp);
    const l = ftrace.arch.trampolineLayout(true);
    expect(l.tail).toBe('ret');
    expect(kernel.memory.read(kp.trampoline + BigInt(l.size), 1)).toEqual(Uint8Array.of(0xc3));
    expect(kernel.memory.read(l.start + BigInt(l.jmpOffset!), 1)).toEqual(Uint8Array.of(0x75));
    expect(kernel.memory.read(kp.trampoline + BigInt(l.jmpOffset!), 2)).toEqual(Uint8Array.of(0x66, 0x90));
    expect(kernel.memory.readU64(kp.trampoline + BigInt(l.slotOffset))).toBe(kp.addr);
    expect(ftrace.arch.checkTrampoline(kp)).toEqual([]);
    // A guest store into it (copy_to_user's rep movsb) is a write-protection fault.
    let fault: unknown;
    try {
      kernel.call('copy_to_user', [kp.trampoline, kernel.userBuffer, 8n]);
    } catch (e) {
      fault = e;
    }
    expect(fault).toBeInstanceOf(GuestFault);
    expect((fault as GuestFault).kind).toBe('protection-write');
  });
  // v3.18's module_alloc() gave RWX pages: the same store goes through there.
  await withKernel({ functions: 4, era: '3.18' }, ({ kernel, ftrace }) => {
    const t = ftrace.createOps({ name: 't', callback: 'counter' });
    ftrace.register_ftrace_function(t);
    kernel.memory.write(kernel.userBuffer, FTRACE_NOP5);
    kernel.call('copy_to_user', [t.trampoline, kernel.userBuffer, 5n]);
    expect(kernel.memory.read(t.trampoline, 5)).toEqual(FTRACE_NOP5);
    expect(ftrace.arch.checkTrampoline(t)[0]).toMatch(/^byte \+0x0 is f/);
  });
});

test('a scenario describes only its eras, and its checks may name eras: run on another is skipped, not failed', async () => {
  const text = `name: t
eras: [3.17, modern]
config: { functions: 4, era: 3.17 }
ops:
  - { name: a, callback: counter }
steps:
  - register: a
  - expect: { only: [3.17], callsite: { vfs_read: ftrace_caller } }
  - expect: { only: [modern], callsite: { vfs_read: trampoline(a) } }
`;
  const s = loadScenarioText(text, 't.yaml');
  expect(s.eras).toEqual(['3.17', 'modern']);
  for (const era of ['3.17', 'modern'] as const) {
    const r = await runScenario(s, { era });
    expect([era, r.passed, r.checks.filter((c) => c.name.includes('callsite')).length]).toEqual([era, true, 1]);
  }
  const skipped = await runScenario(s, { era: '3.18' });
  expect(skipped).toMatchObject({ passed: true, skipped: 'describes 3.17, modern, not 3.18', checks: [] });
  // The same file with the two blocks swapped fails on both eras.
  const swapped = loadScenarioText(text.replace('only: [3.17]', 'only: [x]').replace('only: [modern]', 'only: [3.17]').replace('only: [x]', 'only: [modern]'), 't.yaml');
  for (const era of ['3.17', 'modern'] as const) expect((await runScenario(swapped, { era })).passed).toBe(false);
});

test('trampoline-rcu-tasks: the trampoline a preempted task is in is freed only after it left; without a wait it is not', async () => {
  const s = loadScenarioFile(new URL('../scenarios/trampoline-rcu-tasks.yaml', import.meta.url).pathname, 'trampoline-rcu-tasks.yaml');
  const r = await runScenario(s);
  expect(r.checks.find((c) => c.name.includes('freed after synchronize_rcu_tasks()'))).toMatchObject({ passed: true });
  expect(r.passed).toBe(true);
  // The same steps on a kernel that frees at once, or after every CPU scheduled: the task resumes in freed memory.
  for (const sync of ['none', 'schedule_on_each_cpu'] as const) {
    let failed: string[] = [];
    await inspectScenario(s, undefined, (i) => void (failed = i.failedChecks.map((c) => `${c.name}: ${c.detail}`)), { kernelConfig: { trampolineSync: sync } });
    expect(failed[0]).toMatch(new RegExp(`^steps\\[4\\] unregister kp: its trampoline freed after ${sync}: task 10[01] still inside the freed trampoline at 0x`));
    expect(failed[1]).toMatch(/^CPU 1 \(task [01]\): guest fault: unhandled-interrupt/);
  }
});

test('compare kprobe-plus-function-tracer: v3.17 sends the unprobed function through the list function, v3.18 through a trampoline, and it costs fewer instructions', async () => {
  const r = await cli('compare', 'kprobe-plus-function-tracer', '--json');
  expect(r.code).toBe(0);
  const c = JSON.parse(r.out) as Comparison;
  expect(c.kernels.map((k) => [k.label, k.passed])).toEqual([['3.17', true], ['3.18', true], ['3.19', true], ['modern', true]]);
  const unprobed = c.measurements.find((m) => m.label === 'unprobed')!;
  expect(unprobed.function).toBe('fsnotify_access');
  expect(unprobed.target.slice(0, 2)).toEqual(['ftrace_caller', 'trampoline(tracer)']);
  expect(unprobed.via.slice(0, 2)).toEqual(['ftrace_ops_list_func', 'function_trace_call']);
  expect(unprobed.trampolineSize[0]).toBeNull();
  expect(unprobed.instructions[1]!).toBeLessThan(unprobed.instructions[0]!);
  // A check only some eras make is null elsewhere; the variant does not run.
  expect(c.checks.find((ch) => ch.name === 'steps[6] expect: trampoline kp')!.passed).toEqual([null, true, null, null]);
  expect(c.checks.some((ch) => ch.name.startsWith('[v3.17]'))).toBe(false);
  expect(c.moduleBytes).toEqual([0, 4096, 4096, 4096]);
  expect((await cli('compare', 'kprobe-plus-function-tracer', '--eras', '3.18,2.6')).code).toBe(2);
  // An era the scenario does not describe is shown, not run.
  const some = JSON.parse((await cli('compare', 'ipmodify', '--eras', '3.18,modern', '--json')).out) as Comparison;
  expect(some.kernels.map((k) => k.skipped ?? 'ran')).toEqual(['describes 3.19, modern, not 3.18', 'ran']);
});

test('explain --era 3.18 --vs modern lines the two trampolines up: the jmp ftrace_return became a RET, the ops pointer follows both', async () => {
  const r = await cli('explain', 'kprobe-plus-function-tracer', '--step', '8', '--function', 'fsnotify_access', '--era', '3.18', '--vs', 'modern', '--json');
  expect(r.code).toBe(0);
  const d = JSON.parse(r.out) as { eras: string[]; target: { a: string; b: string }; trampoline: { a: { size: number }; b: { size: number }; lines: { match: string; a: { instruction: string; bytes: string } | null; b: { instruction: string; bytes: string } | null }[] } };
  expect(d.eras).toEqual(['3.18', 'modern']);
  expect(d.target).toEqual({ a: 'trampoline(tracer)', b: 'trampoline(tracer)' });
  const lines = d.trampoline.lines;
  expect(lines.find((l) => l.match === 'only-a' && l.a!.instruction.startsWith('jmp'))!.a!.instruction).toMatch(/<ftrace_return/);
  expect(lines.find((l) => l.match === 'only-b' && l.b!.bytes === 'c3')).toBeDefined();
  expect(lines.at(-1)).toMatchObject({ match: 'same', a: { instruction: expect.stringMatching(/^\.quad /) } });
  // The copied call reaches the same callback from another place: same instruction, other bytes.
  expect(lines.find((l) => l.a?.instruction.includes('<function_trace_call'))!.match).toBe('moved');
  expect(d.trampoline.b.size - d.trampoline.a.size).toBe(48);
  expect((await cli('explain', 'ipmodify', '--era', '3.18')).code).toBe(2);
  expect((await cli('explain', 'kprobe-plus-function-tracer', '--vs', 'v2')).code).toBe(2);
});

describe('mcount call sites (-pg without -mfentry)', () => {
  test('the site follows the frame set-up, boot NOPs it, and the trampoline is made from the mcount-built caller, byte by byte', async () => {
    await initDisassembler();
    await withKernel({ functions: 4, era: '3.18', callsites: 'mcount' }, ({ kernel, ftrace }) => {
      const fn = kernel.symbols.get('vfs_read')!;
      const rec = ftrace.recordOf('vfs_read')!;
      expect(rec.ip - fn.address).toBe(4n);
      expect(kernel.memory.read(fn.address, 4)).toEqual(Uint8Array.of(0x55, 0x48, 0x89, 0xe5)); // push %rbp; mov %rsp,%rbp
      expect(kernel.program.bytes[Number(rec.ip - kernel.program.base)]).toBe(0xe8); // compiled: call mcount
      expect(ftrace.siteTarget(rec).kind).toBe('nop');
      const kp = ftrace.createOps({ name: 'kp', callback: 'kprobe_regs', flags: ['SAVE_REGS'] });
      ftrace.ftrace_set_filter(kp, ['vfs_read']);
      ftrace.register_ftrace_function(kp);
      expect(ftrace.siteTarget(rec).kind).toBe('trampoline');
      expect(ftrace.arch.checkTrampoline(kp)).toEqual([]);
    });
  });

  test('kprobe-plus-function-tracer and function-graph pass on a v3.18 mcount kernel, trampolines checked byte by byte; a v6 kernel has none', async () => {
    for (const name of ['kprobe-plus-function-tracer', 'function-graph']) {
      const s = loadScenarioFile(new URL(`../scenarios/${name}.yaml`, import.meta.url).pathname, `${name}.yaml`);
      const r = await runScenario(s, { callsites: 'mcount' });
      expect([name, r.checks.filter((c) => !c.passed)]).toEqual([name, []]);
      expect(r.callsites).toBe('mcount');
      if (name === 'kprobe-plus-function-tracer') expect(r.checks.find((c) => c.name === 'steps[5] expect: trampoline tracer')!.detail).toMatch(/checked byte by byte/);
      expect((await runScenario(s, { era: 'modern', callsites: 'mcount' })).skipped).toBe('a v6.x kernel has no mcount call sites');
    }
    await expect(withKernel({ era: 'modern', callsites: 'mcount' }, () => 0)).rejects.toThrow(/fentry call sites only/);
  });
});

test('tracefs --after S --era E shows that kernel, and an era S does not describe is bad input', async () => {
  const r = await cli('tracefs', 'enabled_functions', '--after', 'kprobe-plus-function-tracer', '--step', '3', '--era', 'modern', '--json');
  expect(r.code).toBe(0);
  const lines = (JSON.parse(r.out) as { lines: string[] }).lines;
  // The v6 t_show(): the trampoline resolved, and where it calls.
  expect(lines.find((l) => l.startsWith('ksys_read ')) ?? '').toMatch(/tramp: 0x[0-9a-f]+ \(function_trace_call\+0x0\/0x[0-9a-f]+\) ->function_trace_call/);
  const old = await cli('tracefs', 'enabled_functions', '--after', 'kprobe-plus-function-tracer', '--step', '3', '--era', '3.17', '--json');
  expect((JSON.parse(old.out) as { lines: string[] }).lines.find((l) => l.startsWith('ksys_read '))).toMatch(/^ksys_read \(1\) *$/); // no trampoline to show
  const bad = await cli('tracefs', 'enabled_functions', '--after', 'ipmodify', '--era', '3.17');
  expect([bad.code, bad.err]).toEqual([2, expect.stringMatching(/ipmodify\.yaml:1: eras: the scenario describes 3\.19, modern, not 3\.17/)]);
});
