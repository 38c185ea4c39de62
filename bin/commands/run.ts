// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim run` and `ftrace-sim list`: scenarios from the command line. */
import type { Command } from 'commander';
import { builtinScenarioFiles, displayPath } from '../../scenarios/engine/catalog.js';
import { loadScenarioFile } from '../../scenarios/engine/load.js';
import { loadScenarioArg } from './scenario-arg.js';
import { checkReferences } from '../../scenarios/engine/references.js';
import { runScenario, type ScenarioResult } from '../../scenarios/engine/run.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import { say, setExitCode, EXIT, UsageError, colors as c, printJson, table } from '../output.js';

function load(args: string[], all: boolean): Scenario[] {
  if (all && args.length) throw new UsageError('give scenario names or --all, not both');
  if (!all && !args.length) throw new UsageError('name a scenario (see `ftrace-sim list`) or give --all');
  // Every file is loaded and checked before anything runs.
  return all ? builtinScenarioFiles().map((f) => loadScenarioFile(f, displayPath(f))) : args.map(loadScenarioArg);
}

function printResult(r: ScenarioResult): void {
  const mark = r.passed ? c.green('PASS') : c.red('FAIL');
  say(`${mark} ${c.bold(r.name)}  (${r.file})`);
  for (const ch of r.checks) {
    if (ch.passed) say(`  ${c.green('✓')} ${ch.name}${c.dim(` — ${ch.detail}`)}`);
    else say(`  ${c.red('✗')} ${ch.name}\n      ${ch.detail.replace(/\n/g, '\n      ')}`);
  }
  const byOps = Object.entries(r.callbacks.byOps);
  if (byOps.length) {
    say(`  callbacks: ${r.callbacks.invocations} invocations, ${r.callbacks.rdxMismatches} with a wrong %rdx; ` + byOps.map(([n, o]) => `${n}@${o.address}: ${o.invocations}`).join(', '));
  }
  const ins = Object.entries(r.instructionsPerTracedCall);
  if (ins.length) say(table(['guest instructions per traced call', 'instructions'], ins.map(([k, v]) => [k, v])).replace(/^/gm, '  '));
}

export function runCommand(program: Command): void {
  program
    .command('run')
    .description('run scenarios (built-in names or YAML files) and check them from guest memory')
    .argument('[scenario...]', 'built-in scenario names or paths to scenario files')
    .option('--all', 'run every built-in scenario')
    .option('--json', 'print one JSON document: {"scenarios": [...]}')
    .action(async (names: string[], opts: { all?: boolean; json?: boolean }) => {
      const scenarios = load(names, !!opts.all);
      // Every name in every file is resolved before the first scenario boots.
      for (const s of scenarios) await checkReferences(s);
      const results: ScenarioResult[] = [];
      for (const s of scenarios) {
        const r = await runScenario(s, { referencesChecked: true });
        results.push(r);
        if (!opts.json) printResult(r);
      }
      if (opts.json) printJson({ scenarios: results });
      else {
        const failed = results.filter((r) => !r.passed).length;
        say(`\n${results.length - failed} passed, ${failed} failed`);
      }
      setExitCode(results.every((r) => r.passed) ? EXIT.OK : results.some((r) => r.budgetExceeded) ? EXIT.BUDGET : EXIT.CHECK_FAILED);
    });

  program
    .command('list')
    .description('list the built-in scenarios')
    .option('--json', 'print the list as JSON')
    .action((opts: { json?: boolean }) => {
      const list = builtinScenarioFiles().map((f) => {
        const s = loadScenarioFile(f, displayPath(f));
        return { name: s.name, file: displayPath(f), description: s.description.trim() };
      });
      if (opts.json) return printJson({ scenarios: list });
      for (const s of list) say(`${c.bold(s.name)}  ${c.dim(s.file)}\n  ${s.description.replace(/\s+/g, ' ')}\n`);
    });
}
