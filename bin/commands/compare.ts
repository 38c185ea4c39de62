// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim compare <scenario>`: one scenario on each kernel, side by side. */
import type { Command } from 'commander';
import type { Comparison } from '../../scenarios/engine/compare.js';
import { say, setExitCode, EXIT, colors as c, printJson, table } from '../output.js';
import { CALLSITES_HELP, callSitesOption, erasOption } from './era-option.js';
import { loadScenarioArg } from './scenario-arg.js';

function print(r: Comparison): void {
  const head = ['', ...r.kernels.map((k) => `${k.label}${k.version !== `v${k.era}` ? ` (${k.version})` : ''}`)];
  const cell = <T>(v: T | null, f: (x: T) => string = String) => (v === null ? c.dim('—') : f(v));
  const rows: string[][] = [];
  for (const m of r.measurements) {
    rows.push([`${m.function} (${m.label}): call site`, ...m.target.map((t, i) => cell(t, (x) => (m.trampolineSize[i] ? `${x}, ${m.trampolineSize[i]} B` : x)))]);
    rows.push([`  which calls`, ...m.via.map((v) => cell(v))]);
    rows.push([`  guest instructions per traced call`, ...m.instructions.map((n) => cell(n))]);
  }
  rows.push(['trampolines left at the end', ...r.trampolines.map((n) => cell(n))]);
  rows.push(['module space in use at the end', ...r.moduleBytes.map((n) => cell(n, (x) => `${x} B`))]);
  rows.push(['warnings', ...r.warnings.map((w) => cell(w, (x) => String(x.length)))]);
  rows.push(['checks passed', ...r.kernels.map((_k, i) => {
    const made = r.checks.filter((ch) => ch.passed[i] !== null);
    const ok = made.filter((ch) => ch.passed[i]).length;
    return r.kernels[i]!.skipped ? c.dim('not run') : ok === made.length ? c.green(`${ok}/${made.length}`) : c.red(`${ok}/${made.length}`);
  })]);
  say(`${c.bold(r.scenario)}  (${r.file}) on ${r.kernels.length} kernels`);
  say(table(head, rows));
  for (const k of r.kernels) if (k.skipped) say(c.dim(`${k.label} not run: the scenario ${k.skipped}`));
  // The checks that tell the kernels apart: made on some only, or passed on some only.
  const differing = r.checks.filter((ch) => new Set(ch.passed.map(String)).size > 1);
  if (differing.length) {
    say(c.bold('\nChecks made or passed on some kernels only'));
    const mark = (v: boolean | null) => (v === null ? c.dim('—') : v ? c.green('✓') : c.red('✗'));
    say(table(['check', ...r.kernels.map((k) => k.label)], differing.map((ch) => [ch.name, ...ch.passed.map(mark)])));
  }
  for (const [i, w] of r.warnings.entries()) for (const line of w ?? []) say(c.yellow(`${r.kernels[i]!.label}: ${line}`));
  say(r.passed ? c.green('\nPASS on every kernel it describes') : c.red(`\nFAIL on ${r.kernels.filter((k) => !k.passed).map((k) => k.label).join(', ')}: run it there with run --era for the details`));
}

export function compareCommand(program: Command): void {
  program
    .command('compare')
    .description('run one scenario on several kernels and show them side by side: call sites, trampolines, cost per traced call, checks')
    .argument('<scenario>', 'a built-in scenario name or a scenario file')
    .option('--eras <list>', "comma-separated eras (default: every era the scenario describes)")
    .option('--callsites <list>', `comma-separated: ${CALLSITES_HELP} (default: the scenario's own)`)
    .option('--json', 'print the comparison as JSON')
    .action(async (name: string, opts: { eras?: string; callsites?: string; json?: boolean }) => {
      const s = await loadScenarioArg(name);
      const eras = opts.eras === undefined ? s.eras : erasOption(opts.eras);
      const kinds = opts.callsites === undefined ? undefined : callSitesOption(opts.callsites);
      const { compareScenario } = await import('../../scenarios/engine/compare.js');
      const r = await compareScenario(s, eras, kinds);
      if (opts.json) printJson(r);
      else print(r);
      setExitCode(r.passed ? EXIT.OK : EXIT.CHECK_FAILED);
    });
}
