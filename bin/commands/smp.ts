// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim patch-race` and `ftrace-sim torture`: patching while other CPUs run. */
import type { Command } from 'commander';
import { MAX_CPUS } from '../../kernel-model/limits.js';
import type { TortureOptions } from '../../kernel-model/smp/torture.js';
import { say, setExitCode, EXIT, UsageError, colors as c, intOption, printJson, table, seedOption } from '../output.js';
import { defaultJobs, runJobs } from '../workers/pool.js';
import { ERA_HELP, eraOption } from './era-option.js';


/** Enough for a long campaign; memory stays flat over it (engines renew as they go). */
const MAX_TORTURE_CHANGES = 1_000_000;


function choice<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${name} is one of ${allowed.join(', ')}, not '${v}'`);
  return v as T;
}

/** --seeds A..B: the whole numbers A to B. */
export function seedRange(v: string): number[] {
  const m = /^(\d+)\.\.(\d+)$/.exec(v);
  if (!m) throw new UsageError(`--seeds takes A..B, such as 1..20, not '${v}'`);
  const a = intOption('--seeds', m[1]!, 0, 0x7fffffff);
  const b = intOption('--seeds', m[2]!, 0, 0x7fffffff);
  if (b < a) throw new UsageError(`--seeds ${v}: B must not be below A`);
  if (b - a >= 100_000) throw new UsageError(`--seeds ${v}: at most 100000 seeds in one campaign`);
  return Array.from({ length: b - a + 1 }, (_x, i) => a + i);
}

/** Many torture seeds in worker threads: a table in seed order, then each failing seed's replay command. */
async function campaign(base: Omit<TortureOptions, 'seed'>, opts: { seed?: string; seeds?: string; jobs?: string; json?: boolean }): Promise<void> {
  if (opts.seeds === undefined) throw new UsageError('--campaign needs --seeds A..B');
  if (opts.seed !== undefined) throw new UsageError('--campaign takes --seeds A..B, not --seed');
  const seeds = seedRange(opts.seeds);
  const jobs = opts.jobs === undefined ? defaultJobs() : intOption('--jobs', opts.jobs, 1, 256);
  const t0 = performance.now();
  const results = await runJobs('torture', seeds.map((seed) => ({ ...base, seed })), jobs);
  const seconds = (performance.now() - t0) / 1000;
  const failed = results.filter((r) => !r.passed);
  const replay = (seed: number) => `ftrace-sim torture --cpus ${base.cpus} --changes ${base.changes} --era ${base.era} --seed ${seed}`;
  if (opts.json) {
    printJson({
      campaign: { ...base, seeds: opts.seeds, jobs, seconds },
      passed: failed.length === 0,
      failedSeeds: failed.map((r) => r.seed),
      results: results.map((r) => ({ seed: r.seed, passed: r.passed, events: r.events, int3Hits: r.int3Hits, violations: r.violations })),
    });
  } else {
    say(`torture campaign: seeds ${opts.seeds}, ${base.cpus} CPUs, ${base.changes} changes each, ${base.era} era, ${jobs} worker(s), ${seconds.toFixed(1)} s`);
    say(
      table(
        ['seed', 'result', 'invocations checked', 'int3 hits', 'first violation'],
        results.map((r) => [r.seed, r.passed ? 'PASS' : 'FAIL', r.events, r.int3Hits, r.violations[0] ?? '']),
      ),
    );
    say(`${results.length - failed.length} passed, ${failed.length} failed`);
    if (failed.length) {
      say(c.red('failing seeds (each replays alone):'));
      for (const r of failed) say(`  ${replay(r.seed)}`);
    }
  }
  setExitCode(failed.length === 0 ? EXIT.OK : EXIT.CHECK_FAILED);
}

export function smpCommands(program: Command): void {
  program
    .command('patch-race')
    .description('turn the function tracer on and off over every call site while other CPUs run system calls')
    .option('--cpus <n>', `CPUs (2-${MAX_CPUS}); CPU 0 patches, the others run the workload`, '3')
    .option('--patcher <kind>', 'naive (bytes written in place) or int3 (the breakpoint protocol)', 'int3')
    .option('--era <era>', `${ERA_HELP}; the int3 handler skips the site before modern, which emulates the new instruction`, '3.18')
    .option('--rounds <n>', 'register/unregister rounds', '5')
    .option('--graph', 'graph mode: the function graph tracer comes and goes too (ftrace_graph_call is patched as well)')
    .option('--seed <s>', 'seed of the scheduler (printed; the same seed gives the same run)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { cpus: string; patcher: string; era: string; rounds: string; graph?: boolean; seed?: string; json?: boolean }) => {
      const seed = seedOption(opts.seed);
      const { patchRace } = await import('../../kernel-model/smp/patch-race.js');
      const r = await patchRace({
        cpus: intOption('--cpus', opts.cpus, 2, MAX_CPUS),
        patching: choice('--patcher', opts.patcher, ['naive', 'int3'] as const),
        era: eraOption(opts.era),
        rounds: intOption('--rounds', opts.rounds, 1, 1000),
        graph: !!opts.graph,
        seed,
      });
      if (opts.json) printJson(r);
      else {
        say(`patch-race: ${r.options.cpus} CPUs, ${r.options.patching} patcher, ${r.options.era} era, seed ${seed}`);
        say(`  function tracer events: ${r.events}; int3 hits handled: ${r.int3Hits}; wrong %rdx: ${r.rdxProblems.length}`);
        if (opts.graph) say(`  graph mode: ${r.graphEvents} function_graph events${r.graphKilled ? c.red('; the graph tracer found a return stack empty') : ''}`);
        for (const f of r.faults) say(c.red(`  CPU ${f.cpu} faulted:\n    ${f.report.replace(/\n/g, '\n    ')}`));
        for (const p of r.rdxProblems.slice(0, 5)) say(c.red(`  ${p}`));
        say(r.passed ? c.green('PASS: no CPU faulted, every callback got its own ops') : c.red('FAIL: patching raced with the other CPUs'));
      }
      setExitCode(r.passed ? EXIT.OK : EXIT.CHECK_FAILED);
    });

  program
    .command('torture')
    .description('register, unregister and re-filter ops at seeded random points while every other CPU runs workloads')
    .option('--cpus <n>', `CPUs (2-${MAX_CPUS})`, '4')
    .option('--changes <k>', 'ftrace changes to make', '10000')
    .option('--seed <s>', 'seed (printed; replays the same run)')
    .option('--era <era>', ERA_HELP, '3.18')
    .option('--campaign', 'run many seeds (--seeds A..B) in parallel workers; print a summary and the failing seeds')
    .option('--seeds <A..B>', 'with --campaign: the seeds A to B, inclusive')
    .option('--jobs <n>', `with --campaign: runs at once, in worker threads (default: the number of cores, ${defaultJobs()} here)`)
    .option('--graph', 'turn the function graph tracer on and off while preempted tasks are deep inside traced functions')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { cpus: string; changes: string; seed?: string; era: string; campaign?: boolean; seeds?: string; jobs?: string; graph?: boolean; json?: boolean }) => {
      if (opts.graph) {
        const seed = seedOption(opts.seed);
        const { graphTorture } = await import('../../kernel-model/smp/graph-torture.js');
        const g = await graphTorture({
          cpus: intOption('--cpus', opts.cpus, 2, MAX_CPUS),
          changes: intOption('--changes', opts.changes, 1, MAX_TORTURE_CHANGES),
          era: eraOption(opts.era),
          seed,
        });
        if (opts.json) printJson(g);
        else {
          say(`torture --graph: ${g.cpus} CPUs, ${g.tasks} preemptible tasks, ${g.changes} changes, seed ${seed}: ${g.graphEntries} graph entries and ${g.graphReturns} returns (${g.returnsChecked} paired and checked), ${g.otherEvents} other events, ${g.hookedAtUnregister} return addresses hooked when the graph tracer was turned off, ${g.int3Hits} int3 hits, ${Math.round(g.changesPerSecond)} changes/s`);
          for (const v of g.violations.slice(0, 10)) say(c.red(`  ${v}`));
          say(g.passed ? c.green('PASS: no lost return, no return into freed code, every ret_stack balanced') : c.red(`FAIL: ${g.violations.length} violation(s); replay with --seed ${seed}`));
        }
        return setExitCode(g.passed ? EXIT.OK : EXIT.CHECK_FAILED);
      }
      const base = {
        cpus: intOption('--cpus', opts.cpus, 2, MAX_CPUS),
        changes: intOption('--changes', opts.changes, 1, MAX_TORTURE_CHANGES),
        era: eraOption(opts.era),
      };
      if (opts.campaign) return campaign(base, opts);
      if (opts.seeds !== undefined || opts.jobs !== undefined) throw new UsageError('--seeds and --jobs go with --campaign');
      const seed = seedOption(opts.seed);
      const { torture } = await import('../../kernel-model/smp/torture.js');
      const r = await torture({ ...base, seed });
      if (opts.json) printJson(r);
      else {
        say(`torture: ${r.cpus} CPUs, ${r.changes} changes, seed ${seed}: ${r.events} callback invocations checked, ${r.int3Hits} int3 hits, ${Math.round(r.changesPerSecond)} changes/s`);
        for (const v of r.violations.slice(0, 10)) say(c.red(`  ${v}`));
        say(r.passed ? c.green('PASS: every invariant held') : c.red(`FAIL: ${r.violations.length} violation(s); replay with --seed ${seed}`));
      }
      setExitCode(r.passed ? EXIT.OK : EXIT.CHECK_FAILED);
    });

  program
    .command('trampoline-free')
    .description("free a dynamic ops' trampoline while a task is inside it: preemption, and the kernel's waits")
    .option('--era <era>', `${ERA_HELP}; one with trampolines`, '3.18')
    .option('--preempt', 'CONFIG_PREEMPT: the task is preempted inside the trampoline')
    .option('--sync <how>', "what to wait for before freeing: none | schedule_on_each_cpu | rcu_tasks (default: the era's)")
    .option('--seed <s>', 'seed of the scheduler (printed)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { era: string; preempt?: boolean; sync?: string; seed?: string; json?: boolean }) => {
      const seed = seedOption(opts.seed);
      const era = eraOption(opts.era);
      const { eraRules } = await import('../../kernel-model/ftrace/era.js');
      if (!eraRules(era).trampolines) throw new UsageError(`--era ${era}: a ${eraRules(era).version} kernel has no trampolines to free`);
      const { trampolineFree } = await import('../../kernel-model/smp/trampoline-free.js');
      const r = await trampolineFree({
        era,
        preempt: !!opts.preempt,
        ...(opts.sync !== undefined ? { sync: choice('--sync', opts.sync, ['none', 'schedule_on_each_cpu', 'rcu_tasks'] as const) } : {}),
        seed,
      });
      if (opts.json) printJson(r);
      else {
        say(`trampoline-free: era ${era}, ${opts.preempt ? 'CONFIG_PREEMPT' : 'no preemption'}, wait: ${r.options.sync}, seed ${seed}`);
        for (const line of r.story) say(`  ${line}`);
        for (const f of r.faults) say(c.red(`    ${f.report.replace(/\n/g, '\n    ')}`));
        say(r.passed ? c.green('PASS: no task ran in freed memory') : c.red('FAIL: a task ran in the freed trampoline'));
      }
      setExitCode(r.passed ? EXIT.OK : EXIT.CHECK_FAILED);
    });
}
