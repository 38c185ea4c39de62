// SPDX-License-Identifier: GPL-2.0-or-later
/* Names only the booted kernel can resolve, checked against its image before anything runs: each error, word for word. */
import type { Era } from '../kernel-model/kernel.js';
import { ScenarioError, loadScenarioText } from '../scenarios/engine/load.js';
import { checkReferences } from '../scenarios/engine/references.js';
import { inspectScenario } from '../scenarios/engine/run.js';

const OPS = 'ops:\n  - { name: a, callback: counter }\n';
const step = (s: string, head = ''): string => `name: t\n${head}${OPS}steps:\n  - ${s}\n`;

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
    [step('call: no_such_fn'), "x.yaml:5: steps[0].call: unknown function 'no_such_fn'"],
    [step('measure: { function: vfs_read_fake, label: x }'), "x.yaml:5: steps[0].measure: unknown function 'vfs_read_fake'"],
    [step('measure: { function: ftrace_caller, label: x }'), "x.yaml:5: steps[0].measure: 'ftrace_caller' has no fentry call site to measure"],
    [step('call: { function: vfs_read, args: ["&nothing_here"] }'), "x.yaml:5: steps[0].call: unknown symbol in argument '&nothing_here'"],
    [step('call: { function: vfs_read, args: ["&vfs_write", "&file_in", 3] }'), 'no error'],
    [step('corrupt: { at: nothing_here, bytes: [0x90] }'), "x.yaml:5: steps[0].corrupt.at: 'nothing_here' is not a symbol of the kernel's text"],
    [step('corrupt: { at: file_in, bytes: [0x90] }'), "x.yaml:5: steps[0].corrupt.at: 'file_in' is not a symbol of the kernel's text"],
    [step('corrupt: { at: vfs_read, offset: 16777216, bytes: [0x90] }'), "x.yaml:5: steps[0].corrupt.offset: vfs_read+16777216 and 1 bytes run past the end of the kernel's text"],
    [step('corrupt: { at: vfs_read, offset: 2, bytes: [0x90, 0x90] }'), 'no error'],
    [step('expect: { callsite: { nothing_here: nop } }'), "x.yaml:5: steps[0].expect.callsite.nothing_here: unknown function 'nothing_here'"],
    [step('expect: { callsite: { ftrace_caller: nop } }'), "x.yaml:5: steps[0].expect.callsite.ftrace_caller: 'ftrace_caller' has no fentry call site"],
    [step('expect: { ftrace_call: nothing_here }'), "x.yaml:5: steps[0].expect.ftrace_call: 'nothing_here' is neither an ops of the scenario nor a kernel function"],
    [step('expect: { ftrace_call: ftrace_stub }'), 'no error'],
    [step('expect: { ftrace_call: a }'), 'no error'],
    [step('preempt: { cpu: 1, at: nothing_here, expect: preempted }', 'config: { preempt: true, cpus: 2 }\n'), "x.yaml:6: steps[0].preempt.at: 'nothing_here' is not a symbol of the kernel's text"],
    [step('preempt: { cpu: 1, at: vfs_read, expect: preempted }', 'config: { preempt: true, cpus: 2 }\n'), 'no error'],
    [step('corrupt: { at: ftrace_graph_call, bytes: [0x90] }', 'config: { era: modern }\n'), "x.yaml:6: steps[0].corrupt.at: 'ftrace_graph_call' is not a symbol of the kernel's text"],
    [step('expect: { callsite: { vfs_read: mcount } }', 'config: { callsites: mcount, era: 3.17 }\n'), 'no error'],
  ])('%j', async (text, message) => {
    expect(await referenceError(text)).toBe(message);
  });

  test("on another era the message names that kernel", async () => {
    expect(await referenceError(step('corrupt: { at: ftrace_graph_call, bytes: [0x90] }'), 'modern')).toBe(
      "x.yaml:5: steps[0].corrupt.at: 'ftrace_graph_call' is not a symbol of the v6.x kernel's text",
    );
    expect(await referenceError(step('corrupt: { at: ftrace_graph_call, bytes: [0x90] }'), '3.19')).toBe('no error');
  });

  test('inspecting a step that does not exist', async () => {
    const s = loadScenarioText(step('call: vfs_read'), 'x.yaml');
    for (const n of [-1, 1]) {
      await expect(inspectScenario(s, n, () => {})).rejects.toThrow(`x.yaml:1: steps: step ${n} does not exist: the scenario has steps 0 to 0`);
    }
    let ran = -1;
    await inspectScenario(s, 0, ({ stepsRun }) => void (ran = stepsRun));
    expect(ran).toBe(1);
  });
});
