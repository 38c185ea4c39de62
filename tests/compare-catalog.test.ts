// SPDX-License-Identifier: GPL-2.0-or-later
/* How a name on the command line finds a scenario, and what a comparison across kernels keeps of each. */
import path from 'node:path';
import { builtinScenarioFiles, resolveScenario } from '../scenarios/engine/catalog.js';
import { compareScenario } from '../scenarios/engine/compare.js';
import { loadScenarioText } from '../scenarios/engine/load.js';
import { tempFile } from './helpers.js';

test('a scenario is a built-in name or a path to a .yaml or .yml file that exists', () => {
  const file = (name: string) => tempFile(name, 'name: x\nsteps: [{ call: vfs_read }]\n');
  const yml = file('mine.yml');
  expect(resolveScenario(yml)).toBe(yml);
  const yaml = file('mine.yaml');
  expect(resolveScenario(yaml)).toBe(yaml);
  expect(resolveScenario(file('mine.yaml.orig'))).toBeUndefined();
  expect(resolveScenario(path.join(path.dirname(yaml), 'absent.yaml'))).toBeUndefined();
  expect(resolveScenario('unregister')).toBe(builtinScenarioFiles().find((f) => f.endsWith(`${path.sep}unregister.yaml`)));
  expect(resolveScenario('unregister.yaml')).toBeUndefined();
});

test('compare: a kernel the scenario does not describe is shown, not run; a measurement is listed once, null where it was not made', async () => {
  const s = loadScenarioText(
    `name: t
config: { functions: 10, era: "3.18" }
eras: ["3.17", "3.18"]
ops:
  - { name: a, callback: counter }
steps:
  - set_filter: { ops: a, patterns: [vfs_read] }
  - register: a
  - measure: { function: vfs_read, label: read }
  - measure: { function: vfs_write, label: write }
  - expect: { module_bytes: ">0" }
`,
    't.yaml',
  );
  const c = await compareScenario(s, ['3.17', '3.18', 'modern']);
  expect(c.kernels.map((k) => [k.label, k.passed, k.skipped])).toEqual([
    ['3.17', false, undefined],
    ['3.18', true, undefined],
    ['modern', true, 'describes 3.17, 3.18, not modern'],
  ]);
  // One kernel failed: the comparison fails.
  expect(c.passed).toBe(false);
  expect(c.measurements.map((m) => [m.label, m.function, m.target, m.via, m.trampolineSize])).toEqual([
    ['read', 'vfs_read', ['ftrace_caller', 'trampoline(a)', null], ['ftrace_count_probe', 'ftrace_count_probe', null], [null, 152, null]],
    ['write', 'vfs_write', ['nop', 'nop', null], [null, null, null], [null, null, null]],
  ]);
  expect(c.measurements[0]!.instructions[2]).toBeNull();
  expect(c.moduleBytes).toEqual([0, 4096, null]);
  expect(c.checks).toEqual([{ name: 'steps[4] expect: module_bytes', passed: [false, true, null] }]);
});
