// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim record`: a scenario's trace, from guest memory, in a file the field's own tools open. */
import type { Command } from 'commander';
import type { FtraceInternals } from '../../kernel-model/export/internals.js';
import { say, UsageError, printJson, writeOutputFile } from '../output.js';
import { CALLSITES_HELP, ERA_HELP, kernelChoice } from './era-option.js';
import { backgroundCpusHooks, loadScenarioArg, stepOption } from './scenario-arg.js';

export const RECORD_FORMATS = ['dat', 'chrome'] as const;
export type RecordFormat = (typeof RECORD_FORMATS)[number];

function stats(summary: Record<string, unknown>): string {
  const pages = summary.pagesPerCpu as number[];
  return `${pages.reduce((a, b) => a + b, 0)} ring-buffer pages, ${String(summary.timeExtends)} time extends`;
}

export function recordCommand(program: Command): void {
  program
    .command('record')
    .description("run a scenario and write its trace ring buffer as a trace-cmd trace.dat file, or as Chrome trace-event JSON (Perfetto)")
    .argument('<scenario>', 'a built-in scenario name or a scenario file')
    .requiredOption('-o, --output <file>', 'the file to write')
    .option('--format <format>', "dat (trace-cmd's trace.dat, v6) or chrome (trace-event JSON for Perfetto and chrome://tracing)", 'dat')
    .option('--step <n>', 'stop after step n of the scenario (default: all steps)')
    .option('--cpus <n>', 'give the kernel n CPUs; CPUs 1..n-1 run workloads while the scenario runs on CPU 0')
    .option('--era <era>', `on this kernel instead of the scenario's own (${ERA_HELP.replace('the kernel: ', '')})`)
    .option('--callsites <kind>', CALLSITES_HELP)
    .option('--seed <s>', 'with --cpus: seed of the scheduler (printed; the same seed gives the same recording)')
    .option('--ftrace-internals', "with --format chrome: ftrace's own work (trampolines, callers, the list function, callbacks) as nested slices, from code hooks (slow: for short runs)")
    .option('--json', 'print what was recorded as JSON')
    .action(async (name: string, opts: { output: string; format: string; step?: string; cpus?: string; seed?: string; era?: string; callsites?: string; ftraceInternals?: boolean; json?: boolean }) => {
      if (!(RECORD_FORMATS as readonly string[]).includes(opts.format)) throw new UsageError(`--format is one of ${RECORD_FORMATS.join(', ')}, not '${opts.format}'`);
      if (opts.ftraceInternals && opts.format !== 'chrome') throw new UsageError('--ftrace-internals goes with --format chrome');
      const s = await loadScenarioArg(name);
      const step = stepOption(s, opts.step);
      const bg = await backgroundCpusHooks(opts);
      bg.hooks.kernelConfig = { ...bg.hooks.kernelConfig, ...kernelChoice(opts) };
      const { captureTrace, traceDatInput } = await import('../../kernel-model/export/capture.js');
      const { chromeTrace } = await import('../../kernel-model/export/chrome.js');
      const { FtraceInternals } = await import('../../kernel-model/export/internals.js');
      const { writeTraceDat } = await import('../../kernel-model/export/trace-dat.js');
      const { inspectScenario } = await import('../../scenarios/engine/run.js');
      let internals: FtraceInternals | undefined;
      if (opts.ftraceInternals) {
        const onBoot = bg.hooks.onBoot;
        bg.hooks.onBoot = (kernel, ftrace) => {
          internals = new FtraceInternals(kernel, ftrace);
          internals.attach();
          return onBoot?.(kernel, ftrace);
        };
      }
      let summary: Record<string, unknown> = {};
      await inspectScenario(
        s,
        step,
        ({ kernel, stepsRun, failedChecks }) => {
          bg.finish();
          internals?.finish();
          const t = captureTrace(kernel);
          let stats = { pages: [] as number[], timeExtends: 0 };
          let bytes: Uint8Array;
          if (opts.format === 'chrome') {
            bytes = new TextEncoder().encode(JSON.stringify(chromeTrace(t, { scenario: s.name }, internals?.edges)) + '\n');
          } else {
            const dat = writeTraceDat(traceDatInput(t));
            bytes = dat.bytes;
            stats = dat.stats;
          }
          writeOutputFile('--output', opts.output, bytes);
          summary = {
            file: opts.output,
            format: opts.format,
            scenario: s.name,
            step: stepsRun - 1,
            cpus: t.cpus,
            seed: bg.seed,
            events: t.events.length,
            lost: t.lost,
            tasks: t.cmdlines.size,
            ...(opts.format === 'dat' ? { pagesPerCpu: stats.pages, timeExtends: stats.timeExtends } : {}),
            bytes: bytes.length,
            failedChecks: failedChecks.map((c) => c.name),
          };
        },
        bg.hooks,
      );
      if (opts.json) return printJson(summary);
      const where = `${String(summary.events)} function events of ${s.name} on ${String(summary.cpus)} CPU(s)${bg.seed !== null ? ` (seed ${bg.seed})` : ''} to ${opts.output}`;
      if (opts.format === 'dat') {
        say(`recorded ${where}: ${stats(summary)}`);
      } else say(`recorded ${where}: one track per CPU and per task`);
      const failed = summary.failedChecks as string[];
      if (failed.length) say(`note: ${failed.length} of the scenario's checks failed in this run (first: ${failed[0]})`);
      say(opts.format === 'dat' ? `read it with: trace-cmd report -i ${opts.output}   (or: kernelshark ${opts.output})` : `open it in https://ui.perfetto.dev or chrome://tracing`);
    });
}
