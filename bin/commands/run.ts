// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim run` and `ftrace-sim list`: scenarios from the command line. */
import type { Command } from 'commander';
import { builtinScenarioFiles, displayPath } from '../../scenarios/engine/catalog.js';
import type { ScenarioResult } from '../../scenarios/engine/run.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import { say, setExitCode, EXIT, UsageError, colors as c, intOption, printJson, table, writeOutputFile } from '../output.js';
import { junitXml } from '../report/junit.js';
import type { JobKinds } from '../workers/jobs.js';
import { JobError, defaultJobs, runJobs } from '../workers/pool.js';
import { CALLSITES_HELP, ERA_HELP, kernelChoice } from './era-option.js';
import { maxFileSize, resolveScenarioArg } from './scenario-arg.js';

/**
 * Without --jobs, fewer scenarios than this run in this thread: a worker
 * loads Unicorn, Keystone and the scenario engine again (about 0.5 s here),
 * more than the built-in scenarios take to run one after another (run --all:
 * 1.4 s in this thread, 1.9 s with two workers on a 2-core machine).
 */
export const WORKERS_FROM_SCENARIOS = 32;

interface ScenarioFile {
  file: string;
  display: string;
  scenario: Scenario;
}

async function load(args: string[], all: boolean): Promise<ScenarioFile[]> {
  if (all && args.length) throw new UsageError('give scenario names or --all, not both');
  if (!all && !args.length) throw new UsageError('name a scenario (see `ftrace-sim list`) or give --all');
  // Every file is loaded and checked before anything runs.
  const files = all ? builtinScenarioFiles().map((file) => ({ file, display: displayPath(file) })) : args.map(resolveScenarioArg);
  const { loadScenarioFile } = await import('../../scenarios/engine/load.js');
  return files.map(({ file, display }) => ({ file, display, scenario: loadScenarioFile(file, display, maxFileSize()) }));
}

/** --shard i/n: 1 <= i <= n. */
export function shardOption(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m) throw new UsageError(`--shard takes i/n, such as 2/3, not '${v}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new UsageError(`--shard ${v}: i must be from 1 to n`);
  return { index, count };
}

/**
 * Shard i of n: every n-th scenario starting at the i-th, in the order the
 * scenarios were given (--all: by file name), so the n shards together run
 * each scenario exactly once, on any machine.
 */
export function shardOf<T>(items: readonly T[], shard: { index: number; count: number }): T[] {
  return items.filter((_x, k) => k % shard.count === shard.index - 1);
}

function printResult(r: ScenarioResult): void {
  if (r.skipped) return say(`${c.dim('SKIP')} ${c.bold(r.name)}  (${r.file}): ${r.skipped}`);
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
    .option('--era <era>', `run on this kernel (${ERA_HELP.replace('the kernel: ', '')}) instead of each scenario's own; a scenario that does not describe it is skipped`)
    .option('--callsites <kind>', `${CALLSITES_HELP}, instead of each scenario's own; a scenario whose kernel has none is skipped`)
    .option('--json', 'print one JSON document: {"scenarios": [...]}')
    .option('--junit <file>', 'also write the results as JUnit XML (one testsuite per scenario file, one testcase per check)')
    .option('--shard <i/n>', 'run only shard i of n: every n-th scenario, starting at the i-th')
    .option('--jobs <n>', `scenarios run at once, in worker threads (default: the number of cores, ${defaultJobs()} here, from ${WORKERS_FROM_SCENARIOS} scenarios up; fewer run in this thread)`)
    .action(async (names: string[], opts: { all?: boolean; era?: string; callsites?: string; json?: boolean; junit?: string; shard?: string; jobs?: string }) => {
      const { era, callsites } = kernelChoice(opts);
      let files = await load(names, !!opts.all);
      if (opts.shard !== undefined) files = shardOf(files, shardOption(opts.shard));
      // Every name in every file is resolved before the first scenario boots.
      const { checkReferences } = await import('../../scenarios/engine/references.js');
      const { skipReason } = await import('../../scenarios/engine/run.js');
      for (const f of files) {
        const s = f.scenario;
        if (!skipReason(s, era ?? s.config.era, callsites ?? s.config.callsites)) await checkReferences(s, era, callsites);
      }
      const jobs = opts.jobs === undefined ? (files.length < WORKERS_FROM_SCENARIOS ? 1 : defaultJobs()) : intOption('--jobs', opts.jobs, 1, 256);
      let runs: JobKinds['scenario']['output'][];
      try {
        // Results come back in the order the scenarios were given, whatever ran first.
        runs = await runJobs('scenario', files.map(({ file, display }) => ({ file, display, maxBytes: maxFileSize(), ...(era ? { era } : {}), ...(callsites ? { callsites } : {}) })), jobs, ({ result }) => {
          if (!opts.json) printResult(result);
        });
      } catch (e) {
        // A scenario that names what the kernel lacks is bad input, wherever it ran.
        if (e instanceof JobError && e.originalName === 'ScenarioError') throw new UsageError(e.message);
        throw e;
      }
      const results = runs.map((r) => r.result);
      if (opts.junit) writeOutputFile('--junit', opts.junit, junitXml(runs));
      if (opts.json) printJson({ scenarios: results });
      else {
        const failed = results.filter((r) => !r.passed).length;
        const skipped = results.filter((r) => r.skipped).length;
        const on = [era ? `era ${era}` : '', callsites ? `${callsites} call sites` : ''].filter(Boolean).join(', ');
        say(`\n${results.length - failed - skipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}${on ? ` (${on})` : ''}${opts.shard ? ` (shard ${opts.shard})` : ''}`);
      }
      setExitCode(results.every((r) => r.passed) ? EXIT.OK : results.some((r) => r.budgetExceeded) ? EXIT.BUDGET : EXIT.CHECK_FAILED);
    });

  program
    .command('list')
    .description('list the built-in scenarios')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { loadScenarioFile } = await import('../../scenarios/engine/load.js');
      const list = builtinScenarioFiles().map((f) => {
        const s = loadScenarioFile(f, displayPath(f));
        return { name: s.name, file: displayPath(f), eras: s.eras, description: s.description.trim() };
      });
      if (opts.json) return printJson({ scenarios: list });
      for (const s of list) say(`${c.bold(s.name)}  ${c.dim(`${s.file}, on ${s.eras.join(', ')}`)}\n  ${s.description.replace(/\s+/g, ' ')}\n`);
    });
}
