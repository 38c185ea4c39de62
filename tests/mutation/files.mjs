// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The test files a mutant is tried against, in the order they run: those that
 * kill most mutants of ftrace's core and the scenario engine for the least
 * time first, since a mutant's run ends at its first failing test.
 *
 * Left out: the tests of the machine, the assembler and the symbol tables,
 * which load no ftrace code, and those of the web page, which drive a browser
 * that could not see a mutant chosen in this process. (Tests here that start
 * a process cover no mutant of this one, so no mutant's run calls them.)
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

const FIRST = [
  'ftrace-records.test.ts',
  'ftrace.test.ts',
  'ftrace-core.test.ts',
  'ftrace-ops.test.ts',
  'fgraph-hooks.test.ts',
  'fidelity-checks.test.ts',
  'scenario-run.test.ts',
  'expect-checks.test.ts',
  'compare-catalog.test.ts',
  'loader-errors.test.ts',
  'loader-paths.test.ts',
  'hardening.test.ts',
  'golden.test.ts',
  'boot.test.ts',
  'tracefs.test.ts',
  'recursion.test.ts',
  'trace-clock.test.ts',
  'trace-context.test.ts',
  'graph.test.ts',
  'scenarios.test.ts',
  'ftrace-model.test.ts',
  'eras.test.ts',
  'smp.test.ts',
  'cli.test.ts',
  'fuzz.test.ts',
];
const LEFT_OUT = /^(emu|asm|asm-template|symbols|web-.*)\.test\.ts$/;

/* Integration tests that run wholly in this process. */
const INTEGRATION = ['golden.test.ts'];

export function mutationTestFiles(root) {
  const dir = path.join(root, 'tests');
  const rank = (f) => (FIRST.includes(f) ? FIRST.indexOf(f) : FIRST.length);
  const unit = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts') && !LEFT_OUT.test(f))
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))
    .map((f) => path.join(dir, f));
  return [...unit, ...INTEGRATION.map((f) => path.join(dir, 'integration', f))];
}
