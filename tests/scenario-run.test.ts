// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The scenario runner's own word: which checks each step makes, what they
 * are called and where they point, what a fault leaves in the result, and
 * what a measurement reads back from the guest.
 */
import { openEngineCount } from '../emu/index.js';
import { loadScenarioText } from '../scenarios/engine/load.js';
import { inspectScenario, runScenario, type ScenarioResult } from '../scenarios/engine/run.js';

const run = (text: string): Promise<ScenarioResult> => runScenario(loadScenarioText(text, 't.yaml'));
const OPS = 'ops:\n  - { name: a, callback: counter }\n  - { name: b, callback: counter }\n';

test('expect_error: the checks of each outcome, and a destroy that was to fail stops the run', async () => {
  const text = `name: t
config: { functions: 10 }
${OPS}steps:
  - register: { ops: a, expect_error: EBUSY }
  - register: { ops: a, expect_error: EINVAL }
  - register: { ops: a, expect_error: EBUSY }
  - destroy: { ops: a, expect_error: EBUSY }
  - destroy: { ops: b, expect_error: EBUSY }
  - unregister: b
`;
  const r = await run(text);
  expect(r.checks).toEqual([
    { name: 'steps[0] register a', passed: false, detail: 'expected EBUSY, but it succeeded', line: 7 },
    { name: 'steps[1] register a', passed: false, detail: 'returned -16 (EBUSY): a is already registered', line: 8 },
    { name: 'steps[2] register a', passed: true, detail: 'returned -16 (EBUSY): a is already registered', line: 9 },
    { name: 'steps[3] destroy a', passed: true, detail: 'returned -16 (EBUSY): a is still registered', line: 10 },
    { name: 'steps[4] destroy b', passed: false, detail: 'expected EBUSY, but it succeeded; b is gone, so the steps after it do not run', line: 11 },
  ]);
  // The destroy that failed left a; the one that succeeded took b.
  expect(Object.keys(r.callbacks.byOps)).toEqual(['a']);
  expect([r.passed, r.fault, r.end]).toEqual([false, null, { trampolines: 1, moduleBytes: 4096 }]);
  let stepsRun = 0;
  await inspectScenario(loadScenarioText(text, 't.yaml'), undefined, (i) => void (stepsRun = i.stepsRun));
  expect(stepsRun).toBe(5);
});

test('a step that fails without expect_error is reported; one that succeeds makes no check', async () => {
  const r = await run(`name: t\nconfig: { functions: 10 }\n${OPS}steps:\n  - register: a\n  - unregister: b\n  - unregister: a\n`);
  expect(r.checks).toEqual([{ name: 'steps[1] unregister b', passed: false, detail: 'returned -16 (EBUSY): b is not registered', line: 8 }]);
});

describe('a guest fault stops the run at its step', () => {
  test('in a workload: the check names the step and its line; the fault is in the result, and is no budget', async () => {
    const r = await run(`name: t
config: { functions: 10 }
${OPS}steps:
  - register: a
  - corrupt: { at: vfs_read, offset: 5, bytes: [0x0f, 0x0b] }
  - run: { workload: syscalls, iterations: 1 }
  - expect: { invocations: { a: 1000 } }
`);
    expect(r.checks).toHaveLength(1);
    expect(r.checks[0]).toMatchObject({ name: 'steps[2] run syscalls (line 9)', passed: false, line: 9 });
    expect(r.checks[0]!.detail).toMatch(/^guest fault: invalid-instruction, rip 0xffffffff81[0-9a-f]{6} <vfs_read\+0x5>/);
    expect(r.fault).toMatchObject({ kind: 'invalid-instruction', symbol: 'vfs_read+0x5' });
    expect([r.passed, r.budgetExceeded]).toEqual([false, false]);
  });

  test('in a call, from bytes written before boot at an offset into the function', async () => {
    const r = await run(`name: t
config: { functions: 10 }
${OPS}steps:
  - corrupt: { at: vfs_read, offset: 5, bytes: [0x0f, 0x0b], when: before_boot }
  - call: vfs_write
  - call: vfs_read
`);
    expect(r.checks.map((c) => c.name)).toEqual(['steps[2] call vfs_read (line 9)']);
    expect(r.fault).toMatchObject({ kind: 'invalid-instruction', symbol: 'vfs_read+0x5' });
  });

  test('an error that is no fault of the guest is not caught as one', async () => {
    const s = loadScenarioText(`name: t\n${OPS}steps:\n  - register: a\n  - register: b\n`, 't.yaml');
    const open = openEngineCount();
    let steps = 0;
    const afterStep = () => {
      if (++steps === 2) throw new Error('a bug in a hook');
    };
    const hooks = { onBoot: () => afterStep };
    await expect(inspectScenario(s, undefined, () => {}, hooks)).rejects.toThrow('a bug in a hook');
    // The kernel it booted is closed all the same.
    expect(openEngineCount()).toBe(open);
  });
});

test('a skipped scenario has an empty result of its own shape', async () => {
  const r = await runScenario(loadScenarioText(`name: t\neras: [modern]\nconfig: { era: modern }\n${OPS}steps:\n  - register: a\n`, 't.yaml'), { era: '3.18' });
  expect(r).toEqual({
    name: 't',
    file: 't.yaml',
    description: '',
    era: '3.18',
    callsites: 'fentry',
    skipped: 'describes modern, not 3.18',
    passed: true,
    checks: [],
    callbacks: { invocations: 0, rdxMismatches: 0, byOps: {} },
    instructionsPerTracedCall: {},
    measurements: [],
    end: { trampolines: 0, moduleBytes: 0 },
    warnings: [],
    fault: null,
    budgetExceeded: false,
  });
});

describe('measure', () => {
  test("each call site's target and what that target calls, read from the guest", async () => {
    const r = await run(`name: t
config: { functions: 10, era: modern }
eras: [modern]
ops:
  - { name: a, callback: counter }
  - { name: kp, callback: kprobe_regs, flags: [SAVE_REGS] }
steps:
  - measure: { function: vfs_read, label: off }
  - set_filter: { ops: a, patterns: [vfs_read, vfs_write] }
  - set_filter: { ops: kp, patterns: [vfs_write] }
  - register: a
  - measure: { function: vfs_read, label: own }
  - register: kp
  - measure: { function: vfs_write, label: shared }
`);
    const m = r.measurements.map(({ instructions, ...rest }) => ({ ...rest, counted: instructions > 1 }));
    expect(m).toEqual([
      { label: 'off', function: 'vfs_read', target: 'nop', trampolineSize: undefined, via: undefined, counted: false },
      { label: 'own', function: 'vfs_read', target: 'trampoline(a)', trampolineSize: 200, via: 'ftrace_count_probe', counted: true },
      { label: 'shared', function: 'vfs_write', target: 'ftrace_regs_caller', trampolineSize: undefined, via: 'ftrace_ops_list_func', counted: true },
    ]);
    expect(Object.keys(r.instructionsPerTracedCall)).toEqual(['off', 'own', 'shared']);
  });

  test('a variant that costs no more fails the fewer-instructions check, with both counts', async () => {
    const text = (variantConfig: string) => `name: t
config: { functions: 10, era: "3.18" }
eras: ["3.18"]
${OPS}steps:
  - set_filter: { ops: a, patterns: [vfs_read] }
  - set_filter: { ops: b, patterns: [vfs_write] }
  - register: a
  - register: b
  - measure: { function: vfs_read, label: read }
variant: { name: v, config: ${variantConfig}, fewer_instructions: [read] }
`;
    const same = await run(text('{ era: "3.18" }'));
    const n = same.instructionsPerTracedCall.read!;
    expect(same.instructionsPerTracedCall['read [v]']).toBe(n);
    expect(same.checks).toEqual([{ name: 'read: fewer instructions than [v]', passed: false, detail: `${n} guest instructions per traced call, against ${n} in v ({"era":"3.18"})` }]);
    // vfs_read has an ops of its own: a trampoline on v3.18, the list function before.
    const older = await run(text('{ era: "3.17" }'));
    const [a, b] = [older.instructionsPerTracedCall.read!, older.instructionsPerTracedCall['read [v]']!];
    expect(a).toBeLessThan(b);
    expect(older.checks).toEqual([{ name: 'read: fewer instructions than [v]', passed: true, detail: `${a} guest instructions per traced call, against ${b} in v ({"era":"3.17"})` }]);
  });
});

test('a graph ops with no settings of its own registers as it is', async () => {
  const r = await run(`name: t
config: { functions: 10 }
ops:
  - { name: g, callback: function_graph }
steps:
  - register: g
  - call: vfs_read
  - expect: { graph: "vfs_read > [rw_verify_area, new_sync_read > [copy_to_user], fsnotify_access]" }
`);
  expect(r.passed).toBe(true);
  expect(r.checks.map((c) => c.name)).toEqual(['steps[2] expect: graph vfs_read > [rw_verify_area, new_sync_read > [copy_to_user], fsnotify_access]']);
});

test('preempt and unregister on two CPUs: each check a step makes, and the trampolines a task is in', async () => {
  const r = await run(`name: t
config: { functions: 20, era: modern, cpus: 2, preempt: true, seed: 5 }
eras: [modern]
ops:
  - { name: kp, callback: counter, dynamic: true }
  - { name: st, callback: counter }
  - { name: regs, callback: kprobe_regs, flags: [SAVE_REGS] }
steps:
  - preempt: { cpu: 1, at: trampoline(kp), expect: preempted }
  - set_filter: { ops: st, patterns: [fsnotify_access] }
  - register: st
  - preempt: { cpu: 1, at: trampoline(st), expect: refused }
  # a static ops keeps its trampoline: the task inside it is no matter
  - unregister: st
  - set_filter: { ops: kp, patterns: [fsnotify_access] }
  - register: kp
  # not in the trampoline but in the callback it called, which returns through it
  - preempt: { cpu: 1, at: ftrace_count_probe, expect: preempted }
  - unregister: kp
  - set_filter: { ops: regs, patterns: [vfs_read] }
  - register: regs
  - expect: { regs: match }
`);
  expect(r.checks.map(({ name, passed, detail, line }) => [name, passed, line, detail.replace(/(task|running:) \d+/g, '$1 N')])).toEqual([
    ['steps[0] preempt', false, 9, 'kp has no trampoline to be preempted in'],
    ['steps[3] preempt', false, 12, 'task N preempted at ftrace_trampoline[st]+0x80; now running: N'],
    ['steps[7] preempt', true, 18, 'task N preempted at ftrace_count_probe; now running: N'],
    ['steps[8] unregister kp: its trampoline freed after synchronize_rcu_tasks()', true, 19, 'task N, inside it at the unregister, had left it when it was freed'],
    ['steps[11] expect: regs', true, 22, expect.stringMatching(/^all [1-9]\d* SAVE_REGS invocations got a pt_regs matching the traced call$/)],
  ]);
});
