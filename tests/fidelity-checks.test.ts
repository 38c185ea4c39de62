// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checks that must be able to fail: each test runs a real scenario whose
 * expectation is false and requires the check to say so.
 */
import { loadScenarioText } from '../scenarios/engine/load.js';
import { runScenario } from '../scenarios/engine/run.js';
import { compare } from '../scenarios/engine/expectations.js';

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
      `name: t
ops: [{ name: tr, callback: function_trace }]
steps:
  - set_filter: { ops: tr, patterns: [vfs_read] }
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
      `name: t
ops: [{ name: tr, callback: function_trace }]
steps:
  - register: tr
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
      `name: t
ops: [{ name: tr, callback: function_trace }]
steps:
  - unregister: { ops: tr, expect_error: EBUSY }
  - expect: { warnings: none }
`,
      /warnings/,
    );
    expect(c.passed).toBe(false);
  });
  test('warnings: a text the log does not hold fails', async () => {
    const c = await outcome(
      `name: t
ops: [{ name: tr, callback: function_trace }]
steps:
  - register: tr
  - expect: { warnings: "no such warning text" }
`,
      /warnings/,
    );
    expect(c.passed).toBe(false);
  });
});
