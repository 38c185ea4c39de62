// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim patch-race` and `ftrace-sim torture`: patching while other CPUs run. */
import type { Command } from 'commander';
import { MAX_CPUS } from '../../kernel-model/kernel.js';
import { EXIT, UsageError, colors as c, intOption, printJson } from '../output.js';

function seedOption(v: string | undefined): number {
  return v === undefined ? Math.floor(Math.random() * 0x7fffffff) : intOption('--seed', v, 0, 0x7fffffff);
}

function choice<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${name} is one of ${allowed.join(', ')}, not '${v}'`);
  return v as T;
}

export function smpCommands(program: Command): void {
  program
    .command('patch-race')
    .description('turn the function tracer on and off over every call site while other CPUs run system calls')
    .option('--cpus <n>', `CPUs (2-${MAX_CPUS}); CPU 0 patches, the others run the workload`, '3')
    .option('--patcher <kind>', 'naive (bytes written in place) or int3 (the breakpoint protocol)', 'int3')
    .option('--era <era>', 'seed (the int3 handler skips the site) or modern (it emulates the new instruction)', 'seed')
    .option('--rounds <n>', 'register/unregister rounds', '5')
    .option('--seed <s>', 'seed of the scheduler (printed; the same seed gives the same run)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { cpus: string; patcher: string; era: string; rounds: string; seed?: string; json?: boolean }) => {
      const seed = seedOption(opts.seed);
      const { patchRace } = await import('../../kernel-model/patch-race.js');
      const r = await patchRace({
        cpus: intOption('--cpus', opts.cpus, 2, MAX_CPUS),
        patching: choice('--patcher', opts.patcher, ['naive', 'int3'] as const),
        era: choice('--era', opts.era, ['seed', 'modern'] as const),
        rounds: intOption('--rounds', opts.rounds, 1, 1000),
        seed,
      });
      if (opts.json) printJson(r);
      else {
        console.log(`patch-race: ${r.options.cpus} CPUs, ${r.options.patching} patcher, ${r.options.era} era, seed ${seed}`);
        console.log(`  function tracer events: ${r.events}; int3 hits handled: ${r.int3Hits}; wrong %rdx: ${r.rdxProblems.length}`);
        for (const f of r.faults) console.log(c.red(`  CPU ${f.cpu} faulted:\n    ${f.report.replace(/\n/g, '\n    ')}`));
        for (const p of r.rdxProblems.slice(0, 5)) console.log(c.red(`  ${p}`));
        console.log(r.passed ? c.green('PASS: no CPU faulted, every callback got its own ops') : c.red('FAIL: patching raced with the other CPUs'));
      }
      process.exitCode = r.passed ? EXIT.OK : EXIT.CHECK_FAILED;
    });

  program
    .command('torture')
    .description('register, unregister and re-filter ops at seeded random points while every other CPU runs workloads')
    .option('--cpus <n>', `CPUs (2-${MAX_CPUS})`, '4')
    .option('--changes <k>', 'ftrace changes to make', '10000')
    .option('--seed <s>', 'seed (printed; replays the same run)')
    .option('--era <era>', 'seed or modern', 'seed')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { cpus: string; changes: string; seed?: string; era: string; json?: boolean }) => {
      const seed = seedOption(opts.seed);
      const { torture } = await import('../../kernel-model/torture.js');
      const r = await torture({
        cpus: intOption('--cpus', opts.cpus, 2, MAX_CPUS),
        changes: intOption('--changes', opts.changes, 1, 10_000_000),
        era: choice('--era', opts.era, ['seed', 'modern'] as const),
        seed,
      });
      if (opts.json) printJson(r);
      else {
        console.log(`torture: ${r.cpus} CPUs, ${r.changes} changes, seed ${seed}: ${r.events} callback invocations checked, ${r.int3Hits} int3 hits, ${Math.round(r.changesPerSecond)} changes/s`);
        for (const v of r.violations.slice(0, 10)) console.log(c.red(`  ${v}`));
        console.log(r.passed ? c.green('PASS: every invariant held') : c.red(`FAIL: ${r.violations.length} violation(s); replay with --seed ${seed}`));
      }
      process.exitCode = r.passed ? EXIT.OK : EXIT.CHECK_FAILED;
    });

  program
    .command('trampoline-free')
    .description("free a dynamic ops' trampoline while a task is inside it: preemption, and the kernel's waits")
    .option('--preempt', 'CONFIG_PREEMPT: the task is preempted inside the trampoline')
    .option('--sync <how>', 'what to wait for before freeing: none | schedule_on_each_cpu | rcu_tasks', 'schedule_on_each_cpu')
    .option('--seed <s>', 'seed of the scheduler (printed)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { preempt?: boolean; sync: string; seed?: string; json?: boolean }) => {
      const seed = seedOption(opts.seed);
      const { trampolineFree } = await import('../../kernel-model/trampoline-free.js');
      const r = await trampolineFree({
        preempt: !!opts.preempt,
        sync: choice('--sync', opts.sync, ['none', 'schedule_on_each_cpu', 'rcu_tasks'] as const),
        seed,
      });
      if (opts.json) printJson(r);
      else {
        console.log(`trampoline-free: ${opts.preempt ? 'CONFIG_PREEMPT' : 'no preemption'}, wait: ${r.options.sync}, seed ${seed}`);
        for (const line of r.story) console.log(`  ${line}`);
        for (const f of r.faults) console.log(c.red(`    ${f.report.replace(/\n/g, '\n    ')}`));
        console.log(r.passed ? c.green('PASS: no task ran in freed memory') : c.red('FAIL: a task ran in the freed trampoline'));
      }
      process.exitCode = r.passed ? EXIT.OK : EXIT.CHECK_FAILED;
    });
}
