// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzzing the loader and the command line with fast-check: random YAML
 * documents (shaped like scenarios, so that they get past the first key) and
 * random argument vectors. Every case ends as 0, 1, 2 or 4 with a message
 * that names its place, never as an internal error, and quickly.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { main } from '../bin/main.js';
import { ScenarioError, loadScenarioText } from '../scenarios/engine/load.js';

const word = fc.constantFrom(
  'vfs_read', 'ksys_read', 'tracer', 'kp', 'nosuch', 'function_trace', 'counter', 'kprobe_regs', 'SAVE_REGS', 'IPMODIFY',
  'syscalls', 'callgraph', 'match', 'none', 'allocated', 'reuses(kp)', 'trampoline(tracer)', 'nop', '>0', '<=3', '&file_in',
  'seed', '3.17', '3.18', '3.19', 'modern', 'mcount', 'EBUSY', 'vfs_*', '!vfs_read', '', ' ', '0x10', '-1',
);
const scalar = fc.oneof(word, fc.integer({ min: -5, max: 300 }), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.string({ maxLength: 8 }));
const STEP_KINDS = ['set_filter', 'set_notrace', 'register', 'unregister', 'destroy', 'call', 'run', 'reset_counters', 'corrupt', 'measure', 'expect', 'bogus'];
const KEYS = ['ops', 'patterns', 'reset', 'function', 'times', 'args', 'workload', 'iterations', 'at', 'offset', 'bytes', 'label', 'expect_error',
  'callsite', 'invocations', 'rdx', 'regs', 'trampolines', 'ftrace_call', 'module_bytes', 'warnings', 'name', 'callback', 'flags', 'dynamic',
  'eras', 'only', 'era', 'callsites'];
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.constantFrom(...KEYS), tie('v'), { maxKeys: 4 })),
})).v;
const step = fc.dictionary(fc.constantFrom(...STEP_KINDS), value, { minKeys: 1, maxKeys: 2 });
const ops = fc.array(fc.record({ name: fc.constantFrom('tracer', 'kp', 'x'), callback: fc.constantFrom('function_trace', 'counter', 'kprobe_regs', 'bad'), flags: fc.option(value) }, { requiredKeys: ['name'] }), { maxLength: 3 });
const scenario = fc.record(
  {
    name: fc.oneof(fc.constant('fz'), scalar),
    ops: fc.oneof(ops, value),
    steps: fc.oneof(fc.array(step, { maxLength: 6 }), value),
    config: fc.oneof(fc.record({ functions: fc.integer({ min: -1, max: 300 }), era: word }, { requiredKeys: [] }), value),
    bogus: value,
  },
  { requiredKeys: [] },
);

test('the loader returns a scenario or a ScenarioError that names file:line, for any document', () => {
  fc.assert(
    fc.property(fc.oneof(scenario.map((d) => stringify(d)), fc.string({ maxLength: 200 })), (text) => {
      const t0 = performance.now();
      try {
        loadScenarioText(text, 'fz.yaml');
      } catch (e) {
        if (!(e instanceof ScenarioError)) throw e;
        expect(e.message).toMatch(/^fz\.yaml:\d+: /);
      }
      expect(performance.now() - t0).toBeLessThan(1000);
    }),
    { numRuns: 400, seed: 1515 },
  );
});

test('the command line ends with 0, 1, 2 or 4 and a one-line reason, for any arguments', async () => {
  const arg = fc.oneof(
    fc.constantFrom('run', 'list', 'boot', 'disasm', 'tracefs', 'explain', 'compare', 'patch-race', 'torture', 'trampoline-free', 'frob'),
    fc.constantFrom('--json', '--all', '--functions', '--count', '--step', '--after', '--ops', '--function', '--cpus', '--seed', '--era', '--eras', '--vs', '--callsites', '--changes', '--patcher', '--sync', '--max-file-size', '--'),
    fc.constantFrom('no-modules', 'two-static-ops', 'vfs_read', 'ftrace_caller', 'enabled_functions', 'trace', 'x', '-1', '0', '3', '99999999999', 'seed', '3.17', 'modern', 'mcount', '3.18,modern', 'naive', 'none', '1e3', '../../etc/passwd'),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(arg, { maxLength: 5 }), async (args) => {
      // Keep each case small: large kernels and long torture runs are the bench's business.
      if (args[0] === 'torture' || args.includes('--functions') || args.includes('--changes') || args.includes('--cpus') || args.some((a) => /^\d{4,}$/.test(a))) return;
      let err = '';
      const t0 = performance.now();
      const code = await main(args, { out: () => {}, err: (t) => void (err += t) });
      expect([0, 1, 2, 4]).toContain(code);
      if (code === 2) expect(err.trim().length).toBeGreaterThan(0);
      expect(err).not.toMatch(/internal error|\n\s+at /);
      expect(performance.now() - t0).toBeLessThan(5000);
    }),
    { numRuns: 60, seed: 2014 },
  );
}, 120_000);
