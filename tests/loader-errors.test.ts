// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The loader's word for each way a scenario file can be wrong: the file, the
 * line, the key and a reason a newcomer can act on, exactly.
 */
import type { Era } from '../kernel-model/kernel.js';
import { ScenarioError, loadScenarioText } from '../scenarios/engine/load.js';
import { checkReferences } from '../scenarios/engine/references.js';
import { inspectScenario } from '../scenarios/engine/run.js';
import { loadError } from './helpers.js';

const OPS = 'ops:\n  - { name: a, callback: counter }\n  - { name: g, callback: function_graph }\n';
const step = (s: string): string => `name: t\n${OPS}steps:\n  - ${s}\n`;

describe('scenario files: each error, word for word', () => {
  test.each([
    ['name: t\nbogus: 1\nsteps: []\n', "x.yaml:2: bogus: unknown key 'bogus'"],
    ['description: x\nsteps: []\n', "x.yaml:1: missing key 'name'"],
    ['[1, 2]\n', 'x.yaml:1: a scenario is a mapping with at least name and steps'],
    ['name: t\nconfig: [1]\nsteps: []\n', 'x.yaml:2: config: expected a mapping'],
    ['name: t\nops: { a: 1 }\nsteps: []\n', 'x.yaml:2: ops: expected a list'],
    ['name: t\nconfig: { functions: many }\nsteps: []\n', 'x.yaml:2: config.functions: expected an integer'],
    ['name: t\nsteps: []\n', 'x.yaml:2: steps: expected at least 1 item(s)'],
    [
      'name: t\nops:\n  - { name: a, callback: counter }\n  - { name: a, callback: counter }\nsteps:\n  - register: a\n',
      "x.yaml:4: ops[1].name: ops 'a' is declared twice",
    ],
    [step('register: { ops: a, expect_error: EWHAT }'), 'x.yaml:6: steps[0].register.expect_error: expected one of "EBUSY", "ENODEV", "EINVAL"'],
    [step('expect: { rdx: always }'), 'x.yaml:6: steps[0].expect.rdx: expected "match"'],
    [
      step('expect: { callsite: { vfs_read: elsewhere } }'),
      'x.yaml:6: steps[0].expect.callsite.vfs_read: does not have the expected form (^(nop|__fentry__|mcount|ftrace_caller|ftrace_regs_caller|trampoline\\([^)]+\\))$)',
    ],
    [step('call: { function: vfs_read, times: 0 }'), 'x.yaml:6: steps[0].call.times: expected a number >= 1'],
    [step('set_graph: { max_depth: 1001 }'), 'x.yaml:6: steps[0].set_graph.max_depth: expected a number <= 1000'],
    [step('expect: {}'), 'x.yaml:6: steps[0].expect: expected at least 1 key(s)'],
    [step('expect: { graph: "" }'), 'x.yaml:6: steps[0].expect.graph: expected a non-empty string'],
    [step('expect: { invocations: { a: "about 3" } }'), 'x.yaml:6: steps[0].expect.invocations.a: expected a number or a comparison such as ">0" or "<=3"'],
    [step('call: { function: vfs_read, args: [1.5] }'), 'x.yaml:6: steps[0].call.args[0]: expected a whole number, a 0x… number or &symbol'],
    [step('call: { function: vfs_read, args: ["12zz"] }'), 'x.yaml:6: steps[0].call.args[0]: expected a whole number, a 0x… number or &symbol'],
    [step('call: { function: vfs_read, args: ["0x10000000000000000"] }'), 'x.yaml:6: steps[0].call.args[0]: 0x10000000000000000 does not fit in a 64-bit register'],
    [step('call: { function: vfs_read, args: [18446744073709551616] }'), 'x.yaml:6: steps[0].call.args[0]: 18446744073709551616 does not fit in a 64-bit register'],
    [step('call: { function: vfs_read, args: [-9223372036854775809] }'), 'x.yaml:6: steps[0].call.args[0]: -9223372036854775809 does not fit in a 64-bit register'],
    [step('register: 7'), 'x.yaml:6: steps[0].register: expected a mapping'],
    [step('run: nothing_like_this'), 'x.yaml:6: steps[0].run.workload: expected one of "syscalls", "callgraph"'],
    [step('preempt: { cpu: 1, at: vfs_read, expect: preempted }'), 'x.yaml:6: steps[0].preempt: a preempt step needs config.preempt: true'],
    [
      'name: t\nconfig: { cpus: 2, preempt: true }\nsteps:\n  - preempt: { cpu: 2, at: vfs_read, expect: preempted }\n',
      'x.yaml:4: steps[0].preempt.cpu: there is no CPU 2: config.cpus is 2',
    ],
    [
      step('register: a\n  - corrupt: { at: vfs_read, bytes: [0x90], when: before_boot }'),
      'x.yaml:7: steps[1].corrupt.when: a corrupt step with when: before_boot comes before every other step',
    ],
    [step('expect: { graph: "vfs_read > [" }'), "x.yaml:6: steps[0].expect.graph: expected a function name at column 13 of 'vfs_read > ['"],
    [
      step('fly: a'),
      "x.yaml:6: steps[0].fly: unknown step 'fly', expected one of set_filter, set_notrace, register, unregister, destroy, call, run, reset_counters, set_graph, corrupt, preempt, measure, expect",
    ],
    [step('{ register: a, unregister: a }'), 'x.yaml:6: steps[0]: a step has exactly one key (the step kind), not register, unregister'],
    ['name: t\nsteps:\n  - call: vfs_read\n  - call: vfs_read\n    times: 2\n', 'x.yaml:4: steps[1]: a step has exactly one key (the step kind), not call, times'],
    [step('register: b'), "x.yaml:6: steps[0].register.ops: unknown ops 'b' (declared: a, g)"],
    [step('destroy: a\n  - register: a'), "x.yaml:7: steps[1].register.ops: ops 'a' was destroyed at line 6"],
    [step('expect: { trampolines: { a: reuses(zz) } }'), "x.yaml:6: steps[0].expect.trampolines.a: unknown ops 'zz' (declared: a, g)"],
    [step('expect: { only: [2.6] }'), 'x.yaml:6: steps[0].expect.only[0]: expected one of "3.17", "3.18", "3.19", "modern", "seed"'],
    [`name: t\neras: [3.17]\n${OPS}steps:\n  - expect: { only: [modern] }\n`, "x.yaml:7: steps[0].expect.only: era modern is not one of the scenario's eras (3.17)"],
  ])('%j', (text, message) => {
    expect(loadError(text, 'x.yaml').message).toBe(message);
  });
});

describe('scenario files: what the loader makes of good input', () => {
  test('shorthands, and arguments as 64-bit register values', () => {
    const s = loadScenarioText(
      step('register: a\n  - call: vfs_read\n  - run: callgraph\n  - unregister: a\n  - destroy: a\n  - call: { function: vfs_read, args: [18446744073709551615, -1, "0xff", "&file_in"] }'),
      'x.yaml',
    );
    expect(s.steps.map((x) => x.kind)).toEqual(['register', 'call', 'run', 'unregister', 'destroy', 'call']);
    expect(s.steps[0]).toMatchObject({ ops: 'a', where: { file: 'x.yaml', line: 6, key: 'steps[0].register' } });
    expect(s.steps[1]).toMatchObject({ function: 'vfs_read', times: 1, args: undefined });
    expect(s.steps[2]).toMatchObject({ workload: 'callgraph', iterations: 1 });
    expect(s.steps[5]).toMatchObject({ args: [0xffffffffffffffffn, 0xffffffffffffffffn, 0xffn, '&file_in'] });
  });

  test('corrupt steps before boot may follow each other; offsets default to 0', () => {
    const s = loadScenarioText(
      'name: t\nsteps:\n  - corrupt: { at: vfs_read, bytes: [0x90], when: before_boot }\n  - corrupt: { at: vfs_write, offset: 2, bytes: [0x90], when: before_boot }\n  - corrupt: { at: vfs_write, bytes: [0xcc] }\n',
      'x.yaml',
    );
    expect(s.steps).toMatchObject([
      { kind: 'corrupt', at: 'vfs_read', offset: 0, bytes: [0x90], beforeBoot: true },
      { kind: 'corrupt', at: 'vfs_write', offset: 2, beforeBoot: true },
      { kind: 'corrupt', at: 'vfs_write', offset: 0, bytes: [0xcc], beforeBoot: false },
    ]);
  });

  test('expect: returns, warnings, trampolines and graphs as the runner takes them', () => {
    const s = loadScenarioText(
      step('expect: { returns: match, warnings: none, trampolines: { a: none, g: "reuses(a)" }, graph: "static(vfs_read)" }\n  - expect: { warnings: lost, graph: "vfs_read > [a, b > c]" }'),
      'x.yaml',
    );
    expect(s.steps[0]).toMatchObject({
      kind: 'expect',
      expect: { returns: 'match', warnings: { none: true }, trampolines: { a: { kind: 'none' }, g: { kind: 'reuses', ops: 'a' } }, graph: { kind: 'static', root: 'vfs_read' } },
    });
    expect(s.steps[1]).toMatchObject({ expect: { warnings: { contains: 'lost' }, graph: { kind: 'tree', text: 'vfs_read > [a, b > c]' } } });
  });
});

const many = (n: number, f: (i: number) => string): string => Array.from({ length: n }, (_, i) => f(i)).join(', ');

describe('scenario files: the bounds the schema sets', () => {
  test.each([
    ['name: 9bad\nsteps:\n  - call: vfs_read\n', 'x.yaml:1: name: does not have the expected form (^[A-Za-z_][A-Za-z0-9_.-]*$)'],
    [step('expect: { invocations: { a: ">3 apples" } }'), 'x.yaml:6: steps[0].expect.invocations.a: expected a number or a comparison such as ">0" or "<=3"'],
    [step('call: { function: vfs_read, args: ["&9x"] }'), 'x.yaml:6: steps[0].call.args[0]: expected a whole number, a 0x… number or &symbol'],
    ['name: t\neras: []\nsteps:\n  - call: vfs_read\n', 'x.yaml:2: eras: expected at least 1 item(s)'],
    [`name: t\neras: [${many(17, () => 'modern')}]\nsteps:\n  - call: vfs_read\n`, 'x.yaml:2: eras: expected at most 16 item(s)'],
    [step('set_filter: { ops: a, patterns: [""] }'), 'x.yaml:6: steps[0].set_filter.patterns[0]: expected a non-empty string'],
    [step(`set_filter: { ops: a, patterns: [${many(1001, (i) => `f${i}`)}] }`), 'x.yaml:6: steps[0].set_filter.patterns: expected at most 1000 item(s)'],
    [step(`call: { function: vfs_read, args: [${many(7, String)}] }`), 'x.yaml:6: steps[0].call.args: expected at most 6 item(s)'],
    ['name: t\nconfig: { functions: 200001 }\nsteps:\n  - call: vfs_read\n', 'x.yaml:2: config.functions: expected a number <= 200000'],
    ['name: t\nconfig: { budget_ms: 0 }\nsteps:\n  - call: vfs_read\n', 'x.yaml:2: config.budget_ms: expected a number >= 1'],
    ['name: t\nconfig: { seed: 4294967296 }\nsteps:\n  - call: vfs_read\n', 'x.yaml:2: config.seed: expected a number <= 4294967295'],
    ['name: t\nops:\n  - { name: g, callback: function_graph, max_depth: 1001 }\nsteps:\n  - call: vfs_read\n', 'x.yaml:3: ops[0].max_depth: expected a number <= 1000'],
    [step('{}'), 'x.yaml:6: steps[0]: expected at least 1 key(s)'],
    [step('set_graph: {}'), 'x.yaml:6: steps[0].set_graph: expected at least 1 key(s)'],
    [step('corrupt: { at: vfs_read, bytes: [] }'), 'x.yaml:6: steps[0].corrupt.bytes: expected at least 1 item(s)'],
    [step('corrupt: { at: vfs_read, bytes: [256] }'), 'x.yaml:6: steps[0].corrupt.bytes[0]: expected a number <= 255'],
    ['name: t\nconfig: { preempt: true, cpus: 2 }\nsteps:\n  - preempt: { cpu: 0, at: vfs_read, expect: preempted }\n', 'x.yaml:4: steps[0].preempt.cpu: expected a number >= 1'],
    [step('measure: { function: vfs_read, label: "" }'), 'x.yaml:6: steps[0].measure.label: expected a non-empty string'],
    [step('expect: { trampolines: { a: somewhere } }'), 'x.yaml:6: steps[0].expect.trampolines.a: does not have the expected form (^(none|allocated|reuses\\([^)]+\\))$)'],
    [step('expect: { only: [] }'), 'x.yaml:6: steps[0].expect.only: expected at least 1 item(s)'],
  ])('%j', (text, message) => {
    expect(loadError(text, 'x.yaml').message).toBe(message);
  });

  test('the largest values the bounds allow load', () => {
    const s = loadScenarioText(
      `name: a.b-c_9\nconfig: { functions: 200000, budget_ms: 1, seed: 4294967295 }\n${OPS}steps:\n  - call: { function: vfs_read, args: [${many(6, String)}] }\n  - set_filter: { ops: a, patterns: [${many(1000, (i) => `f${i}`)}] }\n  - corrupt: { at: vfs_read, bytes: [0, 255] }\n  - expect: { invocations: { a: " >= 3 " } }\n`,
      'x.yaml',
    );
    expect(s.name).toBe('a.b-c_9');
    expect(s.steps[3]).toMatchObject({ expect: { invocations: { a: { op: '>=', value: 3n } } } });
  });
});

/* Names only the booted kernel can resolve, checked against its image before anything runs. */
const REF_OPS = 'ops:\n  - { name: a, callback: counter }\n';
const refStep = (s: string, head = ''): string => `name: t\n${head}${REF_OPS}steps:\n  - ${s}\n`;

async function referenceError(text: string, era?: Era): Promise<string> {
  const s = loadScenarioText(text, 'x.yaml');
  try {
    await checkReferences(s, era ?? s.config.era);
  } catch (e) {
    if (e instanceof ScenarioError) return e.message;
    throw e;
  }
  return 'no error';
}

describe('scenario references: each error, word for word', () => {
  test.each([
    [refStep('call: no_such_fn'), "x.yaml:5: steps[0].call: unknown function 'no_such_fn'"],
    [refStep('measure: { function: vfs_read_fake, label: x }'), "x.yaml:5: steps[0].measure: unknown function 'vfs_read_fake'"],
    [refStep('measure: { function: ftrace_caller, label: x }'), "x.yaml:5: steps[0].measure: 'ftrace_caller' has no fentry call site to measure"],
    [refStep('call: { function: vfs_read, args: ["&nothing_here"] }'), "x.yaml:5: steps[0].call: unknown symbol in argument '&nothing_here'"],
    [refStep('call: { function: vfs_read, args: ["&vfs_write", "&file_in", 3] }'), 'no error'],
    [refStep('corrupt: { at: nothing_here, bytes: [0x90] }'), "x.yaml:5: steps[0].corrupt.at: 'nothing_here' is not a symbol of the kernel's text"],
    [refStep('corrupt: { at: file_in, bytes: [0x90] }'), "x.yaml:5: steps[0].corrupt.at: 'file_in' is not a symbol of the kernel's text"],
    [refStep('corrupt: { at: vfs_read, offset: 16777216, bytes: [0x90] }'), "x.yaml:5: steps[0].corrupt.offset: vfs_read+16777216 and 1 bytes run past the end of the kernel's text"],
    [refStep('corrupt: { at: vfs_read, offset: 2, bytes: [0x90, 0x90] }'), 'no error'],
    [refStep('expect: { callsite: { nothing_here: nop } }'), "x.yaml:5: steps[0].expect.callsite.nothing_here: unknown function 'nothing_here'"],
    [refStep('expect: { callsite: { ftrace_caller: nop } }'), "x.yaml:5: steps[0].expect.callsite.ftrace_caller: 'ftrace_caller' has no fentry call site"],
    [refStep('expect: { ftrace_call: nothing_here }'), "x.yaml:5: steps[0].expect.ftrace_call: 'nothing_here' is neither an ops of the scenario nor a kernel function"],
    [refStep('expect: { ftrace_call: ftrace_stub }'), 'no error'],
    [refStep('expect: { ftrace_call: a }'), 'no error'],
    [refStep('preempt: { cpu: 1, at: nothing_here, expect: preempted }', 'config: { preempt: true, cpus: 2 }\n'), "x.yaml:6: steps[0].preempt.at: 'nothing_here' is not a symbol of the kernel's text"],
    [refStep('preempt: { cpu: 1, at: vfs_read, expect: preempted }', 'config: { preempt: true, cpus: 2 }\n'), 'no error'],
    [refStep('corrupt: { at: ftrace_graph_call, bytes: [0x90] }', 'config: { era: modern }\n'), "x.yaml:6: steps[0].corrupt.at: 'ftrace_graph_call' is not a symbol of the kernel's text"],
    [refStep('expect: { callsite: { vfs_read: mcount } }', 'config: { callsites: mcount, era: 3.17 }\n'), 'no error'],
  ])('%j', async (text, message) => {
    expect(await referenceError(text)).toBe(message);
  });

  test("on another era the message names that kernel", async () => {
    expect(await referenceError(refStep('corrupt: { at: ftrace_graph_call, bytes: [0x90] }'), 'modern')).toBe(
      "x.yaml:5: steps[0].corrupt.at: 'ftrace_graph_call' is not a symbol of the v6.x kernel's text",
    );
    expect(await referenceError(refStep('corrupt: { at: ftrace_graph_call, bytes: [0x90] }'), '3.19')).toBe('no error');
  });

  test('inspecting a step that does not exist', async () => {
    const s = loadScenarioText(refStep('call: vfs_read'), 'x.yaml');
    for (const n of [-1, 1]) {
      await expect(inspectScenario(s, n, () => {})).rejects.toThrow(`x.yaml:1: steps: step ${n} does not exist: the scenario has steps 0 to 0`);
    }
    let ran = -1;
    await inspectScenario(s, 0, ({ stepsRun }) => void (ran = stepsRun));
    expect(ran).toBe(1);
  });
});
