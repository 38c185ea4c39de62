// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim tracefs <file>`: a tracefs file, printed from guest memory after a scenario step. */
import type { Command } from 'commander';
import { boot } from '../../kernel-model/boot.js';
import type { Ftrace } from '../../kernel-model/ftrace/core.js';
import type { FtraceOps } from '../../kernel-model/ftrace/ops.js';
import type { Kernel } from '../../kernel-model/kernel.js';
import { TRACEFS_FILES, availableFilterFunctions, enabledFunctions, setFtraceHash, traceFile, type TracefsFile } from '../../kernel-model/views/tracefs.js';
import { inspectScenario } from '../../scenarios/engine/run.js';
import { write, UsageError, printJson } from '../output.js';
import { loadScenarioArg, stepOption } from './scenario-arg.js';

function render(file: TracefsFile, kernel: Kernel, ftrace: Ftrace, ops: ReadonlyMap<string, FtraceOps>, opsName: string | undefined): { text: string; ops?: string } {
  switch (file) {
    case 'available_filter_functions':
      return { text: availableFilterFunctions(kernel, ftrace) };
    case 'enabled_functions':
      return { text: enabledFunctions(kernel, ftrace) };
    case 'trace':
      return { text: traceFile(kernel, ftrace) };
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
    .argument('<file>', TRACEFS_FILES.join(' | '))
    .option('--after <scenario>', 'run this scenario first (a built-in name or a file)')
    .option('--step <n>', 'stop after step n of the scenario (default: all steps)')
    .option('--ops <name>', 'for set_ftrace_filter/notrace: the ops whose hash to show (default: the function tracer)')
    .option('--json', 'print {file, scenario, step, ops, lines} as JSON')
    .action(async (file: string, opts: { after?: string; step?: string; ops?: string; json?: boolean }) => {
      if (!(TRACEFS_FILES as readonly string[]).includes(file)) throw new UsageError(`no tracefs file '${file}' here; there are: ${TRACEFS_FILES.join(', ')}`);
      const f = file as TracefsFile;
      if (opts.step !== undefined && !opts.after) throw new UsageError('--step goes with --after <scenario>');
      let out: { text: string; ops?: string } | undefined;
      let stepShown: number | null = null;
      if (opts.after) {
        const s = loadScenarioArg(opts.after);
        const step = stepOption(s, opts.step);
        await inspectScenario(s, step, ({ kernel, ftrace, ops, stepsRun }) => {
          stepShown = stepsRun - 1;
          out = render(f, kernel, ftrace, ops, opts.ops);
        });
      } else {
        const { kernel, ftrace } = await boot();
        try {
          out = render(f, kernel, ftrace, new Map(), opts.ops);
        } finally {
          kernel.close();
        }
      }
      const text = out!.text;
      if (opts.json) {
        printJson({ file: f, scenario: opts.after ?? null, step: stepShown, ops: out!.ops ?? null, lines: text.split('\n').slice(0, -1) });
      } else write(text);
    });
}
