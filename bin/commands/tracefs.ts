// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim tracefs <file>`: a tracefs file, printed from guest memory after a scenario step. */
import type { Command } from 'commander';
import type { Ftrace } from '../../kernel-model/ftrace/core.js';
import type { FtraceOps } from '../../kernel-model/ftrace/ops.js';
import type { Kernel } from '../../kernel-model/kernel.js';
import type { TracefsFile } from '../../kernel-model/views/tracefs.js';
import type { GraphTracefsFile } from '../../kernel-model/views/graph-trace.js';
import { write, writeErr, UsageError, printJson } from '../output.js';
import { CALLSITES_HELP, ERA_HELP, kernelChoice } from './era-option.js';
import { backgroundCpusHooks, loadScenarioArg, stepOption } from './scenario-arg.js';

type AnyFile = TracefsFile | GraphTracefsFile;
/*
 * The views' own lists (TRACEFS_FILES, GRAPH_TRACEFS_FILES), written out so
 * that --help does not load the views and, through them, Unicorn; the type
 * below fails to compile if a file is missing here.
 */
const FILES = [
  'available_filter_functions',
  'enabled_functions',
  'set_ftrace_filter',
  'set_ftrace_notrace',
  'trace',
  'trace_clock',
  'set_graph_function',
  'set_graph_notrace',
  'max_graph_depth',
] as const satisfies readonly AnyFile[];
type Missing = Exclude<AnyFile, (typeof FILES)[number]>;
const allListed: [Missing] extends [never] ? true : Missing = true;
void allListed;

type Views = typeof import('../../kernel-model/views/tracefs.js') & typeof import('../../kernel-model/views/graph-trace.js');

function render(v: Views, file: AnyFile, kernel: Kernel, ftrace: Ftrace, ops: ReadonlyMap<string, FtraceOps>, opsName: string | undefined): { text: string; ops?: string } {
  const { availableFilterFunctions, enabledFunctions, setFtraceHash, traceFile, traceClockFile, graphTraceFile, graphTracefsFile, hasGraphEvents } = v;
  switch (file) {
    case 'available_filter_functions':
      return { text: availableFilterFunctions(kernel, ftrace) };
    case 'enabled_functions':
      return { text: enabledFunctions(kernel, ftrace) };
    case 'trace':
      // current_tracer: function_graph once the graph tracer has written events.
      return { text: hasGraphEvents(kernel) ? graphTraceFile(kernel) : traceFile(kernel, ftrace) };
    case 'trace_clock':
      return { text: traceClockFile() };
    case 'set_graph_function':
    case 'set_graph_notrace':
    case 'max_graph_depth':
      return { text: graphTracefsFile(kernel, file) };
    case 'set_ftrace_filter':
    case 'set_ftrace_notrace': {
      // The files belong to an ops: by default the function tracer's, as in tracefs.
      const o = opsName ? ops.get(opsName) : ([...ops.values()].find((x) => x.callback === 'function_trace') ?? [...ops.values()][0]);
      if (!o) throw new UsageError(opsName ? `no ops '${opsName}' in the scenario (it has: ${[...ops.keys()].join(', ') || 'none'})` : `${file} belongs to an ops: give --after <scenario>`);
      return { text: setFtraceHash(kernel, o, file === 'set_ftrace_filter' ? 'filter' : 'notrace'), ops: o.name };
    }
  }
}

export function tracefsCommand(program: Command): void {
  program
    .command('tracefs')
    .description('print a tracefs file, in the kernel\'s format, from guest memory')
    .argument('<file>', FILES.join(' | '))
    .option('--after <scenario>', 'run this scenario first (a built-in name or a file)')
    .option('--step <n>', 'stop after step n of the scenario (default: all steps)')
    .option('--ops <name>', 'for set_ftrace_filter/notrace: the ops whose hash to show (default: the function tracer)')
    .option('--cpus <n>', 'with --after: give the kernel n CPUs; CPUs 1..n-1 run workloads meanwhile')
    .option('--era <era>', `with --after: on this kernel instead of the scenario's own (${ERA_HELP.replace('the kernel: ', '')})`)
    .option('--callsites <kind>', `with --after: ${CALLSITES_HELP}`)
    .option('--seed <s>', 'with --cpus: seed of the scheduler (printed on stderr; the same seed gives the same run)')
    .option('--json', 'print {file, scenario, step, ops, lines} as JSON')
    .action(async (file: string, opts: { after?: string; step?: string; ops?: string; cpus?: string; seed?: string; era?: string; callsites?: string; json?: boolean }) => {
      if (!(FILES as readonly string[]).includes(file)) throw new UsageError(`no tracefs file '${file}' here; there are: ${FILES.join(', ')}`);
      const f = file as AnyFile;
      if ((opts.step ?? opts.cpus ?? opts.era ?? opts.callsites) !== undefined && !opts.after) throw new UsageError('--step, --cpus, --era and --callsites go with --after <scenario>');
      const bg = await backgroundCpusHooks(opts);
      bg.hooks.kernelConfig = { ...bg.hooks.kernelConfig, ...kernelChoice(opts) };
      const v: Views = { ...(await import('../../kernel-model/views/tracefs.js')), ...(await import('../../kernel-model/views/graph-trace.js')) };
      if (bg.seed !== null && !opts.json) writeErr(`seed ${bg.seed}
`);
      let out: { text: string; ops?: string } | undefined;
      let stepShown: number | null = null;
      if (opts.after) {
        const s = await loadScenarioArg(opts.after);
        const step = stepOption(s, opts.step);
        const { inspectScenario } = await import('../../scenarios/engine/run.js');
        await inspectScenario(
          s,
          step,
          ({ kernel, ftrace, ops, stepsRun }) => {
            bg.finish();
            stepShown = stepsRun - 1;
            out = render(v, f, kernel, ftrace, ops, opts.ops);
          },
          bg.hooks,
        );
      } else {
        const { boot } = await import('../../kernel-model/boot.js');
        const { kernel, ftrace } = await boot();
        try {
          out = render(v, f, kernel, ftrace, new Map(), opts.ops);
        } finally {
          kernel.close();
        }
      }
      const text = out!.text;
      if (opts.json) {
        printJson({ file: f, scenario: opts.after ?? null, step: stepShown, ops: out!.ops ?? null, cpus: bg.cpus, seed: bg.seed, lines: text.split('\n').slice(0, -1) });
      } else write(text);
    });
}
