// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim boot`: assemble and boot the model kernel and summarise it. */
import type { Command } from 'commander';
import { MAX_FUNCTIONS } from '../../kernel-model/limits.js';
import { say, intOption, printJson, table } from '../output.js';

export function bootCommand(program: Command): void {
  program
    .command('boot')
    .description('assemble the model kernel, boot it, and turn every fentry call site into a NOP')
    .option('--functions <n>', `generated functions beside the hand-written core (0-${MAX_FUNCTIONS})`, '200')
    .option('--no-cache', 'assemble even if an identical kernel is cached in .cache/asm')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { functions: string; cache: boolean; json?: boolean }) => {
      const functions = intOption('--functions', opts.functions, 0, MAX_FUNCTIONS);
      // Unicorn and Keystone load here, not for --help.
      const { boot } = await import('../../kernel-model/boot.js');
      const { ucVersion } = await import('../../emu/index.js');
      const { kernel, ftrace, timings } = await boot({ functions, traceClock: false, ...(opts.cache ? {} : { cacheDir: undefined }) });
      try {
        const nops = ftrace.records.all().filter((r) => ftrace.siteTarget(r).kind === 'nop').length;
        const summary = {
          unicorn: ucVersion(),
          functions,
          regions: kernel.describeRegions(),
          symbols: kernel.symbols.size,
          textBytes: kernel.program.bytes.length,
          records: ftrace.records.length,
          nopSites: nops,
          timings: {
            assembleMs: round(timings.assembleMs),
            loadMs: round(timings.loadMs),
            nopMs: round(timings.nopMs),
            totalMs: round(timings.totalMs),
            fromCache: timings.fromCache,
          },
        };
        if (opts.json) return printJson(summary);
        say(table(['region', 'start', 'end', 'size', 'perms'], summary.regions.map((r) => [r.name, r.start, r.end, r.size, r.perms])));
        say(`Unicorn ${summary.unicorn}   symbols: ${summary.symbols}   text: ${summary.textBytes} bytes`);
        say(`dyn_ftrace records: ${summary.records} (call sites now NOP: ${nops})`);
        say(
          `boot: ${summary.timings.totalMs} ms (assemble ${summary.timings.assembleMs}${timings.fromCache ? ', from cache' : ''}, ` +
            `load ${summary.timings.loadMs}, NOP conversion ${summary.timings.nopMs})`,
        );
      } finally {
        kernel.close();
      }
    });
}

const round = (ms: number) => Math.round(ms * 10) / 10;
