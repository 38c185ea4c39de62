// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim explain <scenario>`: one function's call site, trampoline and path, byte by byte. */
import type { Command } from 'commander';
import { hex } from '../../emu/hex.js';
import type { Era } from '../../kernel-model/limits.js';
import type { Explanation, TrampolineLine } from '../../kernel-model/views/explain.js';
import type { ExplanationDiff, LineMatch } from '../../kernel-model/views/explain-diff.js';
import type { Check } from '../../scenarios/engine/run.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import { ERA_HELP, eraOption } from './era-option.js';
import { say, UsageError, colors as c, printJson } from '../output.js';
import { loadScenarioArg, stepOption } from './scenario-arg.js';

/** The function a scenario is most about: the first one its expectations name. */
function defaultFunction(s: Scenario): string {
  for (const st of s.steps) if (st.kind === 'expect' && st.expect.callsite) return Object.keys(st.expect.callsite)[0]!;
  for (const st of s.steps) if (st.kind === 'call' || st.kind === 'measure') return st.function;
  return 'vfs_read';
}

function print(e: Explanation, s: Scenario, step: number): void {
  const h = (t: string) => say('\n' + c.bold(c.cyan(t)));
  say(`${c.bold(e.function)} in ${s.name}, after step ${step}: its call site at ${hex(e.site)} now calls ${c.bold(e.target)}`);
  h('The call site');
  for (const st of e.stages) say(`  ${st.stage.padEnd(26)} ${c.yellow(st.bytes.padEnd(16))} ${st.instruction}`);
  if (e.trampoline) {
    const t = e.trampoline;
    h(`The trampoline of ${t.ops}: ${t.size} bytes at ${hex(t.address)} in module space, made from ${t.copiedFrom}`);
    for (const l of t.lines) {
      const special = !l.note.startsWith('copied from');
      const line = `  +0x${l.offset.toString(16).padStart(3, '0')}  ${l.bytes.padEnd(27)} ${l.instruction}`;
      say(special ? c.green(line) + '\n' + c.green(`         ^ ${l.note}`) : line + c.dim(`   ; ${l.note}`));
    }
  }
  h('One call, from the call site to the function body');
  say('  ' + e.path.join(c.dim(' -> ')));
  if (e.graph) {
    const g = e.graph;
    const sym = (a: bigint | undefined) => (a === undefined ? '?' : `${hex(a)} <${e.symbolize(a) ?? '?'}>`);
    h('The graph tracer: the return address it replaced');
    say(`  prepare_ftrace_return(parent = ${hex(g.slot)}): the stack slot of ${e.function}'s return address (ret_stack depth ${g.depth})`);
    say(`  before  ${hex(g.slot)}: ${sym(g.before)}`);
    say(`  after   ${hex(g.slot)}: ${c.yellow(sym(g.after))}`);
    say(`  on return, return_to_handler popped ret_stack and went to ${sym(g.returnedTo)}${g.returnedTo === g.before ? c.green(': the original caller') : c.red(': NOT the original caller')}`);
  }
  h('What each callback received');
  if (!e.callbacks.length) say(e.target === 'nop' ? '  no callback ran: the call site is a NOP' : "  no recording callback ran (a graph ops' func is ftrace_stub: the graph tracer records from ftrace_graph_caller)");
  for (const cb of e.callbacks) {
    const verdict = cb.ownOps ? c.green(`%rdx = &${cb.ops}: its own ops`) : c.red(`%rdx = ${cb.ops ? `&${cb.ops}` : hex(cb.rdx)}: NOT its own ops`);
    say(`  ${c.bold(cb.callback)}: %rdi = ${hex(cb.rdi)} (ip), %rsi = ${hex(cb.rsi)} (parent ip), %rcx = ${hex(cb.rcx)}${cb.rcx ? ' (pt_regs)' : ''}`);
    say(`      ${verdict}`);
  }
}

/** The two explanations, lined up: what changed between the eras, byte by byte. */
function printDiff(d: ExplanationDiff, s: Scenario, step: number, eras: [string, string]): void {
  const h = (t: string) => say('\n' + c.bold(c.cyan(t)));
  const [ea, eb] = eras;
  say(`${c.bold(d.function)} in ${s.name}, after step ${step}: ${c.bold(ea)} vs ${c.bold(eb)}`);
  say(`  its call site calls ${c.bold(d.target.a)} on ${ea}, ${c.bold(d.target.b)} on ${eb}`);
  h('The call site');
  for (const st of d.site) {
    const mark = st.same ? c.dim('=') : c.yellow('≠');
    say(`  ${mark} ${st.stage.padEnd(26)} ${ea}: ${c.yellow(st.a.bytes.padEnd(16))} ${st.a.instruction}`);
    say(`    ${''.padEnd(26)} ${eb}: ${c.yellow(st.b.bytes.padEnd(16))} ${st.b.instruction}`);
  }
  const t = d.trampoline;
  const about = (e: string, m: typeof t.a, target: string) => (m ? `${e}: ${m.ops}'s, ${m.size} bytes, made from ${m.copiedFrom}` : `${e}: no trampoline (the site calls ${target})`);
  h('The trampolines');
  say(`  ${about(ea, t.a, d.target.a)}\n  ${about(eb, t.b, d.target.b)}`);
  if (t.lines.length) {
    say(c.dim(`  = same bytes   ~ same instruction, other bytes   - ${ea} only   + ${eb} only`));
    const side = (l: TrampolineLine | null) => (l ? `+0x${l.offset.toString(16).padStart(3, '0')} ${l.bytes.padEnd(24)} ${l.instruction.replace(/\s+#.*$/, '')}` : '');
    const MARK: Record<LineMatch, string> = { same: c.dim('='), moved: c.yellow('~'), 'only-a': c.red('-'), 'only-b': c.green('+') };
    for (const l of t.lines) {
      const text = `${side(l.a).padEnd(66)} ${side(l.b)}`;
      say(`  ${MARK[l.match]} ${l.match === 'same' ? c.dim(text) : text}`);
    }
  }
  h('One call, from the call site to the function body');
  say(`  ${ea}: ${d.path.a.join(c.dim(' -> '))}`);
  say(`  ${eb}: ${d.path.b.join(c.dim(' -> '))}`);
}

export function explainCommand(program: Command): void {
  program
    .command('explain')
    .description('show one traced function byte by byte: call site, trampoline, and the path to each callback')
    .argument('<scenario>', 'a built-in scenario name or a scenario file')
    .option('--step <n>', 'explain the state after step n (default: after the last step)')
    .option('--function <name>', 'the function to explain (default: the first one the scenario checks)')
    .option('--era <era>', `on this kernel instead of the scenario's own (${ERA_HELP.replace('the kernel: ', '')})`)
    .option('--vs <era>', 'and on this one too: the two lined up, differences marked')
    .option('--json', 'print the explanation as JSON')
    .action(async (name: string, opts: { step?: string; function?: string; era?: string; vs?: string; json?: boolean }) => {
      const s = await loadScenarioArg(name);
      const step = stepOption(s, opts.step);
      const fn = opts.function ?? defaultFunction(s);
      const era = opts.era === undefined ? s.config.era : eraOption(opts.era);
      const vs = opts.vs === undefined ? undefined : eraOption(opts.vs, '--vs');
      const { explainFunction } = await import('../../kernel-model/views/explain.js');
      const { inspectScenario, skipReason } = await import('../../scenarios/engine/run.js');
      // Both kernels are checked before the first one runs.
      for (const e of [era, ...(vs ? [vs] : [])]) {
        const skipped = skipReason(s, e, s.config.callsites);
        if (skipped) throw new UsageError(`${s.name} ${skipped}`);
      }
      const explainOn = async (e: Era) => {
        let got: { e: Explanation; stepsRun: number; failedChecks: Check[] } | undefined;
        await inspectScenario(
          s,
          step,
          ({ kernel, ftrace, stepsRun, failedChecks }) => {
            if (!kernel.symbols.get(fn)) throw new UsageError(`unknown function '${fn}'`);
            if (!ftrace.recordOf(fn)) throw new UsageError(`'${fn}' has no fentry call site to explain`);
            got = { e: explainFunction(kernel, ftrace, fn), stepsRun, failedChecks };
          },
          { kernelConfig: { era: e } },
        );
        return got!;
      };
      const a = await explainOn(era);
      if (vs) {
        const b = await explainOn(vs);
        const { diffExplanations } = await import('../../kernel-model/views/explain-diff.js');
        const d = diffExplanations(a.e, b.e);
        if (opts.json) return printJson({ scenario: s.name, step: a.stepsRun - 1, eras: [era, vs], ...d, failedChecks: { [era]: a.failedChecks, [vs]: b.failedChecks } });
        printDiff(d, s, a.stepsRun - 1, [era, vs]);
        const failed = a.failedChecks.length + b.failedChecks.length;
        if (failed) say(c.red(`\n(${failed} check(s) of the scenario failed before this point: run it with --era for details)`));
        return;
      }
      if (opts.json) return printJson({ scenario: s.name, step: a.stepsRun - 1, era, ...a.e, failedChecks: a.failedChecks });
      print(a.e, s, a.stepsRun - 1);
      if (a.failedChecks.length) say(c.red(`\n(${a.failedChecks.length} check(s) of the scenario failed before this point: run it for details)`));
    });
}
