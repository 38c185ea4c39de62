// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim run` and `ftrace-sim list`: scenarios from the command line. */
import type { Command } from 'commander';
import { builtinScenarioFiles, displayPath, resolveScenario } from '../../scenarios/engine/catalog.js';
import type { ScenarioResult } from '../../scenarios/engine/run.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import { EXIT, UsageError, colors as c, printJson, table } from '../output.js';

async function load(args: string[], all: boolean): Promise<Scenario[]> {
  // Loaded here, not at start-up: the YAML, schema and engine code is not needed for --help.
  const { loadScenarioFile } = await import('../../scenarios/engine/load.js');
  if (all && args.length) throw new UsageError('give scenario names or --all, not both');
  if (!all && !args.length) throw new UsageError('name a scenario (see `ftrace-sim list`) or give --all');
  const files = all
    ? builtinScenarioFiles()
    : args.map((a) => {
        const f = resolveScenario(a);
        if (!f) throw new UsageError(`no scenario '${a}': not a file, nor one of ${builtinScenarioFiles().map((x) => displayPath(x).replace(/^scenarios\/|\.ya?ml$/g, '')).join(', ')}`);
        return f;
      });
  // Every file is loaded and checked before anything runs.
  return files.map((f) => loadScenarioFile(f, displayPath(f)));
}

function printResult(r: ScenarioResult): void {
  const mark = r.passed ? c.green('PASS') : c.red('FAIL');
  console.log(`${mark} ${c.bold(r.name)}  (${r.file})`);
  for (const ch of r.checks) {
    if (ch.passed) console.log(`  ${c.green('✓')} ${ch.name}${c.dim(` — ${ch.detail}`)}`);
    else console.log(`  ${c.red('✗')} ${ch.name}\n      ${ch.detail.replace(/\n/g, '\n      ')}`);
  }
  const byOps = Object.entries(r.callbacks.byOps);
  if (byOps.length) {
    console.log(`  callbacks: ${r.callbacks.invocations} invocations, ${r.callbacks.rdxMismatches} with a wrong %rdx; ` + byOps.map(([n, o]) => `${n}@${o.address}: ${o.invocations}`).join(', '));
  }
  const ins = Object.entries(r.instructionsPerTracedCall);
  if (ins.length) console.log(table(['guest instructions per traced call', 'instructions'], ins.map(([k, v]) => [k, v])).replace(/^/gm, '  '));
}

export function runCommand(program: Command): void {
  program
    .command('run')
    .description('run scenarios (built-in names or YAML files) and check them from guest memory')
    .argument('[scenario...]', 'built-in scenario names or paths to scenario files')
    .option('--all', 'run every built-in scenario')
    .option('--json', 'print one JSON document: {"scenarios": [...]}')
    .action(async (names: string[], opts: { all?: boolean; json?: boolean }) => {
      const scenarios = await load(names, !!opts.all);
      const { runScenario } = await import('../../scenarios/engine/run.js');
      const results: ScenarioResult[] = [];
      for (const s of scenarios) {
        const r = await runScenario(s);
        results.push(r);
        if (!opts.json) printResult(r);
      }
      if (opts.json) printJson({ scenarios: results });
      else {
        const failed = results.filter((r) => !r.passed).length;
        console.log(`\n${results.length - failed} passed, ${failed} failed`);
      }
      process.exitCode = results.every((r) => r.passed) ? EXIT.OK : EXIT.CHECK_FAILED;
    });

  program
    .command('list')
    .description('list the built-in scenarios')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { loadScenarioFile } = await import('../../scenarios/engine/load.js');
      const list = builtinScenarioFiles().map((f) => {
        const s = loadScenarioFile(f, displayPath(f));
        return { name: s.name, file: displayPath(f), description: s.description.trim() };
      });
      if (opts.json) return printJson({ scenarios: list });
      for (const s of list) console.log(`${c.bold(s.name)}  ${c.dim(s.file)}\n  ${s.description.replace(/\s+/g, ' ')}\n`);
    });
}
