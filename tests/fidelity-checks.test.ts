// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checks that must be able to fail: each test runs a real scenario whose
 * expectation is false and requires the check to say so.
 */
import { loadScenarioText } from '../scenarios/engine/load.js';
import { loadError as loadErrorOf } from './helpers.js';
import { inspectScenario, runScenario } from '../scenarios/engine/run.js';
import { explainFunction } from '../kernel-model/views/explain.js';
import { compare } from '../scenarios/engine/expectations.js';
import { resolveConfig } from '../kernel-model/kernel.js';

/** A scenario with the function tracer `tr` declared; the steps follow. */
const TRACER = 'name: t\nops: [{ name: tr, callback: function_trace }]\nsteps:\n';

async function outcome(text: string, what: RegExp) {
  const r = await runScenario(loadScenarioText(text, 't.yaml'));
  const c = r.checks.find((x) => what.test(x.name));
  if (!c) throw new Error(`no check named ${what}: ${r.checks.map((x) => x.name).join(', ')}`);
  return c;
}

describe('count comparisons are strict where they say so', () => {
  test.each([
    ['>', 5n, 5n, false],
    ['>', 6n, 5n, true],
    ['<', 5n, 5n, false],
    ['>=', 5n, 5n, true],
    ['<=', 6n, 5n, false],
    ['!=', 5n, 5n, false],
  ] as const)('%s: %s vs %s', (op, actual, value, want) => {
    expect(compare(actual, { op, value })).toBe(want);
  });

  test('invocations: ">N" fails when the guest counted exactly N', async () => {
    const c = await outcome(
      TRACER + `  - set_filter: { ops: tr, patterns: [vfs_read] }
  - register: tr
  - call: { function: vfs_read, args: ["&file_in", 0x7ff000000100, 32] }
  - expect: { invocations: { tr: ">1" } }
`,
      /invocations tr/,
    );
    expect(c.passed).toBe(false);
  });
});

describe('checks that saw nothing do not pass', () => {
  test('regs: match fails when no SAVE_REGS invocation was checked', async () => {
    const c = await outcome(
      TRACER + `  - register: tr
  - run: { workload: syscalls, iterations: 2 }
  - expect: { regs: match }
`,
      /regs$/,
    );
    expect(c.passed).toBe(false);
    expect(c.detail).toMatch(/no SAVE_REGS/);
  });
});

describe('warnings', () => {
  test('warnings: none fails when the kernel warned', async () => {
    const c = await outcome(
      TRACER + `  - unregister: { ops: tr, expect_error: EBUSY }
  - expect: { warnings: none }
`,
      /warnings/,
    );
    expect(c.passed).toBe(false);
  });
  test('warnings: a text the log does not hold fails', async () => {
    const c = await outcome(
      TRACER + `  - register: tr
  - expect: { warnings: "no such warning text" }
`,
      /warnings/,
    );
    expect(c.passed).toBe(false);
  });
});

const loadError = (text: string) => loadErrorOf(text, 'bad.yaml');

describe('ops flags and errors each era has (item 8)', () => {
  test('IPMODIFY in v3.18 is bad input, with its line', () => {
    const e = loadError('name: t\nops:\n  - { name: lp, callback: kprobe_regs, flags: [SAVE_REGS, IPMODIFY] }\nsteps:\n  - register: lp\n');
    expect(e.message).toMatch(/bad\.yaml:3/);
    expect(e.message).toMatch(/IPMODIFY does not exist in v3\.18/);
  });
  test('IPMODIFY is also bad input when only the variant is v3.18', () => {
    const e = loadError(
      'name: t\nconfig: { era: modern }\nops:\n  - { name: lp, callback: kprobe_regs, flags: [SAVE_REGS, IPMODIFY] }\nsteps:\n  - register: lp\nvariant: { name: old, config: { era: seed } }\n',
    );
    expect(e.message).toMatch(/IPMODIFY/);
  });
  test.each(['ENOENT', 'ENOMEM'])('expect_error: %s, which ftrace here never returns, is bad input', (errno) => {
    const e = loadError(`name: t\nops:\n  - { name: a, callback: counter }\nsteps:\n  - register: { ops: a, expect_error: ${errno} }\n`);
    expect(e.message).toMatch(/bad\.yaml:5/);
  });
  test('two IPMODIFY ops on one function: the second gets -EBUSY and nothing changes', async () => {
    const r = await runScenario(
      loadScenarioText(
        `name: t
config: { era: modern, functions: 0 }
eras: [3.19, modern]
ops:
  - { name: a, callback: kprobe_regs, flags: [SAVE_REGS, IPMODIFY] }
  - { name: b, callback: kprobe_regs, flags: [SAVE_REGS, IPMODIFY] }
steps:
  - set_filter: { ops: a, patterns: [vfs_read] }
  - set_filter: { ops: b, patterns: [vfs_read] }
  - register: a
  - register: { ops: b, expect_error: EBUSY }
  - expect: { callsite: { vfs_read: trampoline(a) }, warnings: none }
`,
        't.yaml',
      ),
    );
    expect(r.checks.filter((c) => !c.passed)).toEqual([]);
  });
  test('SAVE_REGS_IF_SUPPORTED alone asks for nothing on x86 (it has DYNAMIC_FTRACE_WITH_REGS)', async () => {
    const r = await runScenario(
      loadScenarioText(
        `name: t
config: { functions: 0 }
ops:
  - { name: a, callback: counter, flags: [SAVE_REGS_IF_SUPPORTED] }
  - { name: b, callback: counter }
steps:
  - set_filter: { ops: a, patterns: [vfs_read] }
  - register: a
  - register: b
  - expect: { callsite: { vfs_read: ftrace_caller } }
`,
        't.yaml',
      ),
    );
    expect(r.checks.filter((c) => !c.passed)).toEqual([]);
  });
});

describe("explain's 'after boot' row is read from guest memory (item 10)", () => {
  test('after an ftrace bug at boot, a site past the bad one still calls __fentry__ after boot', async () => {
    const s = loadScenarioText(
      `name: t
config: { functions: 0 }
steps:
  - corrupt: { at: vfs_read, bytes: [0xe8, 0x11, 0x22, 0x33, 0x44], when: before_boot }
  - call: vfs_write
`,
      't.yaml',
    );
    await inspectScenario(s, undefined, ({ kernel, ftrace }) => {
      const after = (fn: string) => explainFunction(kernel, ftrace, fn).stages.find((x) => x.stage.startsWith('after boot'))!;
      expect(after('vfs_write').bytes.startsWith('e8')).toBe(true);
      expect(after('vfs_write').instruction).toMatch(/__fentry__/);
      expect(after('do_syscall_64').bytes).toBe('0f 1f 44 00 00');
    });
  });
});

describe('after boot the kernel patches with breakpoints (item 7)', () => {
  test('the int3 protocol is the default on one CPU too', () => {
    expect(resolveConfig({}).patching).toBe('int3');
    expect(resolveConfig({ cpus: 1, era: 'modern' }).patching).toBe('int3');
  });
  test('config.cpus is bad input beyond the CPUs the machine has', () => {
    const e = loadError('name: t\nconfig: { cpus: 99 }\nsteps:\n  - call: vfs_read\n');
    expect(e.message).toMatch(/bad\.yaml:2/);
  });
});
