// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The loader, further in: the key path an error names at every depth, the
 * references each kind of step and expectation resolves, and what a valid
 * file loads to, key by key.
 */
import path from 'node:path';
import { loadScenarioFile, loadScenarioText } from '../scenarios/engine/load.js';
import { loadError, tempFile } from './helpers.js';

const OPS = 'ops:\n  - { name: a, callback: counter }\n  - { name: g, callback: function_graph }\n';
const step = (s: string): string => `name: t\n${OPS}steps:\n  - ${s}\n`;

describe('errors deeper in a file name their key path and line', () => {
  test.each([
    [step('reset_counters: [a, zz]'), "x.yaml:6: steps[0].reset_counters[1]: unknown ops 'zz' (declared: a, g)"],
    [step('measure: { function: vfs_read, label: m, args: ["1x"] }'), 'x.yaml:6: steps[0].measure.args[0]: expected a whole number, a 0x… number or &symbol'],
    [step('preempt: { cpu: 1, at: trampoline(zz), expect: preempted }').replace('name: t\n', 'name: t\nconfig: { cpus: 2, preempt: true }\n'), "x.yaml:7: steps[0].preempt.at: unknown ops 'zz' (declared: a, g)"],
    [step('expect: { only: ["3.17", "3.17"], rdx: match }'), 'x.yaml:6: steps[0].expect.only[1]: era 3.17 is listed twice'],
    [step('expect: { callsite: { vfs_read: trampoline(zz) } }'), "x.yaml:6: steps[0].expect.callsite.vfs_read: unknown ops 'zz' (declared: a, g)"],
    [step('expect: { invocations: { zz: 1 } }'), "x.yaml:6: steps[0].expect.invocations.zz: unknown ops 'zz' (declared: a, g)"],
    [step('expect: { trampolines: { zz: none } }'), "x.yaml:6: steps[0].expect.trampolines.zz: unknown ops 'zz' (declared: a, g)"],
    [step('expect: { trampolines: { a: "reuses(a)" } }'), 'x.yaml:6: steps[0].expect.trampolines.a: an ops cannot reuse its own trampoline'],
    [step('expect: { callsite: { gen_func_1: elsewhere } }'), 'x.yaml:6: steps[0].expect.callsite.gen_func_1: does not have the expected form'],
    [step('expect: { callsite: { "a/b~c": elsewhere } }'), 'x.yaml:6: steps[0].expect.callsite.a/b~c: does not have the expected form'],
    [`name: t\n${OPS}steps:\n${'  - call: vfs_read\n'.repeat(10)}  - call: { function: vfs_read, times: 0 }\n`, 'x.yaml:16: steps[10].call.times: expected a number >= 1'],
    ['name: t\nconfig: { modules: 3 }\nsteps:\n  - call: vfs_read\n', 'x.yaml:2: config.modules: expected a boolean'],
    ['name: 3\nsteps:\n  - call: vfs_read\n', 'x.yaml:1: name: expected a string'],
    ['# a comment first\n\ndescription: x\nsteps: []\n', "x.yaml:3: missing key 'name'"],
    ['name: t\nconfig: { era: modern, callsites: mcount }\nsteps:\n  - call: vfs_read\n', 'x.yaml:2: config.callsites: a v6.x x86-64 kernel has fentry call sites only'],
    [`name: t\n${OPS}steps:\n  - measure: { function: vfs_read, label: m }\nvariant: { name: v, config: { era: "3.17" }, fewer_instructions: [m, zz] }\n`, "x.yaml:7: variant.fewer_instructions[1]: no measure step has the label 'zz'"],
    ['name: t\nops:\n  - { name: a, callback: counter, max_depth: 3 }\nsteps:\n  - register: a\n', 'x.yaml:3: ops[0].max_depth: only an ops with callback function_graph has graph settings'],
    ['name: t\nops:\n  - { name: a, callback: counter, graph_notrace: [vfs_read] }\nsteps:\n  - register: a\n', 'x.yaml:3: ops[0].graph_notrace: only an ops with callback function_graph has graph settings'],
    ['name: t\nops:\n  - { name: a, callback: counter, graph_functions: [vfs_read] }\nsteps:\n  - register: a\n', 'x.yaml:3: ops[0].graph_functions: only an ops with callback function_graph has graph settings'],
    ['name: t\nops:\n  - { name: kp, callback: kprobe_regs }\nsteps:\n  - register: kp\n', 'x.yaml:3: ops[0].flags: kprobe_regs reads the pt_regs it is passed: the ops needs flags [SAVE_REGS]'],
    ['name: t\neras: ["3.17", "3.18"]\nconfig: { era: modern }\nsteps:\n  - call: vfs_read\n', "x.yaml:3: config.era: era modern is not one of the scenario's eras (3.17, 3.18)"],
    [step('expect: { graph: "static(vfs_read) x" }'), "x.yaml:6: steps[0].expect.graph: unexpected '(vfs_read) x' in 'static(vfs_read) x'"],
  ])('%j', (text, message) => {
    const got = loadError(text, 'x.yaml').message;
    expect(got.slice(0, message.length)).toBe(message);
  });
});

describe('what a valid file loads to', () => {
  test('call arguments: the lowest 64-bit value is a register full', () => {
    const s = loadScenarioText(step('call: { function: vfs_read, args: [-9223372036854775808] }'), 't.yaml');
    expect(s.steps[0]).toMatchObject({ kind: 'call', args: [0x8000000000000000n] });
  });

  test("graph settings hold the keys the file gives, and no others", () => {
    const s = loadScenarioText(
      'name: t\nops:\n  - { name: g, callback: function_graph, graph_functions: [vfs_read] }\n  - { name: h, callback: function_graph, graph_notrace: [vfs_write], max_depth: 0 }\n  - { name: i, callback: function_graph }\nsteps:\n  - set_graph: { max_depth: 2 }\n  - set_graph: { functions: [vfs_read], notrace: [ksys_read] }\n',
      't.yaml',
    );
    expect(s.ops.map((o) => o.graph)).toStrictEqual([{ functions: ['vfs_read'] }, { notrace: ['vfs_write'], maxDepth: 0 }, {}]);
    expect(s.steps.map((x) => (x.kind === 'set_graph' ? x.settings : undefined))).toStrictEqual([{ maxDepth: 2 }, { functions: ['vfs_read'], notrace: ['ksys_read'] }]);
  });

  test('an expectation holds the kinds the step names, and no others', () => {
    const s = loadScenarioText(step('expect: { ftrace_call: a, rdx: match, regs: match, graph: " static( vfs_read ) " }'), 't.yaml');
    expect(s.steps[0]).toMatchObject({ kind: 'expect' });
    const first = s.steps[0]!;
    const e = first.kind === 'expect' ? first.expect : undefined;
    expect(e).toStrictEqual({ ftraceCall: 'a', rdx: 'match', regs: 'match', graph: { kind: 'static', root: 'vfs_read' } });
    const bare = loadScenarioText(step('expect: { warnings: none }'), 't.yaml').steps[0]!;
    expect(bare.kind === 'expect' && Object.keys(bare.expect)).toEqual(['warnings']);
  });

  test('a config without budget_ms has no call budget of its own', () => {
    expect('callBudgetMs' in loadScenarioText(step('call: vfs_read'), 't.yaml').config).toBe(false);
    expect(loadScenarioText(step('call: vfs_read').replace('name: t\n', 'name: t\nconfig: { budget_ms: 50 }\n'), 't.yaml').config.callBudgetMs).toBe(50);
  });

  test('only `trampoline(<ops>)` names a trampoline to be preempted in', () => {
    const at = (label: string) => {
      const s = loadScenarioText(`name: t\nconfig: { cpus: 2, preempt: true }\n${OPS}steps:\n  - preempt: { cpu: 1, at: "${label}", expect: preempted }\n`, 't.yaml');
      const first = s.steps[0]!;
      return first.kind === 'preempt' ? first.trampolineOf : 'not a preempt step';
    };
    expect([at('trampoline(a)'), at('xtrampoline(a)'), at('trampoline(a)x')]).toEqual(['a', undefined, undefined]);
  });
});

describe('scenario files on disk', () => {
  const text = step('call: vfs_read');

  test('a file of exactly the size limit loads; one byte more does not', () => {
    const f = tempFile('edge.yaml', text);
    expect(loadScenarioFile(f, 'edge.yaml', text.length).name).toBe('t');
    expect(() => loadScenarioFile(f, 'edge.yaml', text.length - 1)).toThrow(`edge.yaml:1: the file is ${text.length} bytes; scenario files are limited to ${text.length - 1} (--max-file-size raises it)`);
  });

  test('a path that cannot be read says why', () => {
    const dir = path.dirname(tempFile('any.yaml', text));
    expect(() => loadScenarioFile(dir, 'dir.yaml')).toThrow(/^dir\.yaml:1: cannot read: EISDIR/);
  });
});
