// SPDX-License-Identifier: GPL-2.0-or-later
import { builtinScenarioFiles, displayPath } from '../scenarios/engine/catalog.js';
import { loadScenarioFile, loadScenarioText } from '../scenarios/engine/load.js';
import { loadError as loadErrorOf } from './helpers.js';
import { runScenario } from '../scenarios/engine/run.js';

describe('built-in scenarios', () => {
  const files = builtinScenarioFiles();
  test('there are at least the eight first ones', () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
  });
  test.each(files.map((f) => [displayPath(f), f]))('%s passes, with every %%rdx checked', async (_n, f) => {
    const r = await runScenario(loadScenarioFile(f));
    const failed = r.checks.filter((c) => !c.passed);
    expect(failed).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.callbacks.rdxMismatches).toBe(0);
    // Where ftrace_bug() killed ftrace at boot no callback can run: nothing to check.
    const killed = r.warnings.some((w) => w.includes('ftrace failed to modify'));
    expect(r.checks.some((c) => c.name.endsWith('rdx') && /all \d+ invocations/.test(c.detail))).toBe(!killed);
  });
});

describe('the claim of per-ops trampolines', () => {
  test('an unprobed function costs fewer guest instructions through its trampoline than through the list function', async () => {
    const f = builtinScenarioFiles().find((x) => x.includes('kprobe-plus-function-tracer'))!;
    const r = await runScenario(loadScenarioFile(f));
    const ins = r.instructionsPerTracedCall;
    expect(ins['unprobed']).toBeLessThan(ins['unprobed [v3.17]']!);
    // The probed function pays for the list walk and pt_regs either way.
    expect(ins['probed']).toBe(ins['probed [v3.17]']);
    expect(ins['probed']).toBeGreaterThan(ins['unprobed']!);
  });
});

const base = `name: t
ops:
  - { name: tracer, callback: function_trace }
steps:
`;

const loadError = (text: string) => loadErrorOf(text, 'bad.yaml');

describe('scenario files: errors name the file, the line and the key', () => {
  test.each([
    ['an unknown step', base + '  - register: tracer\n  - frobnicate: tracer\n', 6, 'steps[1].frobnicate', /unknown step 'frobnicate'/],
    ['an unknown ops', base + '  - register: nobody\n', 5, 'steps[0].register.ops', /unknown ops 'nobody'/],
    ['an unknown callback', 'name: t\nops:\n  - { name: a, callback: nosuch }\nsteps:\n  - register: a\n', 3, 'ops[0].callback', /expected one of/],
    ['an unknown key', base + '  - call: { function: vfs_read, tiems: 3 }\n', 5, 'steps[0].call.tiems', /unknown key 'tiems'/],
    ['a bad count', base + '  - expect: { invocations: { tracer: "about 3" } }\n', 5, 'steps[0].expect.invocations.tracer', /a number or a comparison/],
    ['an impossible count', base + '  - expect: { invocations: { tracer: "<0" } }\n', 5, 'steps[0].expect.invocations.tracer', /never be below 0/],
    ['a bad callsite value', base + '  - expect: { callsite: { vfs_read: everywhere } }\n', 5, 'steps[0].expect.callsite.vfs_read', /expected form/],
    ['broken YAML', 'name: t\nsteps: [\n', 3, '', /YAML/],
    ['a missing key', 'name: t\n', 1, '', /missing key 'steps'/],
  ])('%s', (_what, text, line, key, reason) => {
    const e = loadError(text);
    expect(e.where.file).toBe('bad.yaml');
    expect(e.where.line).toBe(line);
    expect(e.where.key).toBe(key);
    expect(e.message).toMatch(reason);
    expect(e.message.startsWith(`bad.yaml:${line}:`)).toBe(true);
  });

  test('an unknown function is bad input, found before any step runs', async () => {
    const s = loadScenarioText(base + '  - register: tracer\n  - call: no_such_function\n', 'f.yaml');
    await expect(runScenario(s)).rejects.toThrow(/f\.yaml:6: steps\[1\]\.call: unknown function 'no_such_function'/);
  });
});

describe('failures are checks, with expected and actual values', () => {
  test('a wrong expectation fails with both values; ftrace errors are results', async () => {
    const s = loadScenarioText(
      base +
        [
          '  - register: tracer',
          '  - register: { ops: tracer, expect_error: EBUSY }',
          '  - set_filter: { ops: tracer, patterns: [no_such_fn*] }',
          '  - call: vfs_read',
          '  - expect: { invocations: { tracer: 99 }, callsite: { vfs_read: nop } }',
        ].join('\n') +
        '\n',
      'w.yaml',
    );
    const r = await runScenario(s);
    expect(r.passed).toBe(false);
    const byName = Object.fromEntries(r.checks.map((c) => [c.name, c]));
    expect(byName['steps[1] register tracer']).toMatchObject({ passed: true, detail: expect.stringMatching(/-16 \(EBUSY\)/) });
    expect(byName['steps[2] set_filter tracer']).toMatchObject({ passed: false, detail: expect.stringMatching(/-22 \(EINVAL\).*no_such_fn\* matches no function/) });
    expect(byName['steps[4] expect: invocations tracer']).toMatchObject({ passed: false, detail: 'expected 99, guest counted 5' });
    expect(byName['steps[4] expect: callsite vfs_read']).toMatchObject({ passed: false, detail: 'expected nop, guest memory holds trampoline(tracer)' });
  });

  test('a guest fault fails the scenario with the fault report and stops it', async () => {
    const s = loadScenarioText(base + '  - register: tracer\n  - call: { function: copy_to_user, args: [0x10, "&file_data", 8] }\n  - expect: { rdx: match }\n', 'g.yaml');
    const r = await runScenario(s);
    expect(r.passed).toBe(false);
    expect(r.fault).toMatchObject({ kind: 'unmapped-write', address: '0x10', symbol: expect.stringMatching(/^copy_to_user\+/) });
    const c = r.checks.find((x) => !x.passed)!;
    expect(c.name).toBe('steps[1] call copy_to_user (line 6)');
    expect(c.detail).toMatch(/RIP: /);
    expect(r.checks.some((x) => x.name.includes('steps[2]'))).toBe(false);
  });
});

test("the README's example scenario is valid and passes", async () => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
  const r = await runScenario(loadScenarioText(yaml, 'README.md'));
  expect(r.checks.filter((c) => !c.passed)).toEqual([]);
  expect(r.passed).toBe(true);
});

test('an era is named by its version, as a YAML number or text, or by its alias', () => {
  const era = (v: string) => loadScenarioText(`name: t\nconfig: { era: ${v} }\nsteps:\n  - call: vfs_read\n`, 'e.yaml').config.era;
  expect(era('3.18')).toBe('3.18');
  expect(era('"3.18"')).toBe('3.18');
  expect(era('seed')).toBe('3.18');
  expect(era('modern')).toBe('modern');
  expect(era('3.17')).toBe('3.17');
  expect(era('3.19')).toBe('3.19');
  expect(loadError(`name: t\nconfig: { era: 3.16 }\nsteps:\n  - call: vfs_read\n`).message).toMatch(/^bad\.yaml:2: config\.era: expected one of "3\.17", "3\.18", "3\.19", "modern", "seed"/);
  expect(loadError(`name: t\nconfig: { era: 3.17 }\neras: [3.18, modern]\nsteps:\n  - call: vfs_read\n`).message).toMatch(/^bad\.yaml:2: config\.era: era 3\.17 is not one of the scenario's eras \(3\.18, modern\)/);
  expect(loadError(`name: t\neras: [3.18, seed]\nsteps:\n  - call: vfs_read\n`).message).toMatch(/^bad\.yaml:2: eras\[1\]: era 3\.18 is listed twice/);
  expect(loadError(`name: t\neras: [3.18]\nsteps:\n  - expect: { only: [modern], rdx: match }\n`).message).toMatch(/^bad\.yaml:4: steps\[0\]\.expect\.only: era modern is not one of the scenario's eras/);
});
