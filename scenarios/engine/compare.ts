// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One scenario on several kernels, side by side: what each measured
 * function's call site called and what one traced call cost there, what was
 * left in module space, the warnings, and which checks held on which kernel.
 * Everything comes from the runs' results, which come from guest memory.
 */
import { eraRules } from '../../kernel-model/ftrace/era.js';
import type { CallSites, Era } from '../../kernel-model/kernel.js';
import { checkReferences } from './references.js';
import { runScenario, skipReason, type ScenarioResult } from './run.js';
import type { Scenario } from './types.js';

export interface CompareKernel {
  /** What the columns are headed with: the era as `run --era` takes it, and the call sites when both kinds are compared. */
  label: string;
  era: Era;
  callsites: CallSites;
  version: string;
  /** Set when the scenario does not describe this kernel: nothing ran. */
  skipped?: string;
  passed: boolean;
}

/** One value per kernel, in the order of `kernels`; null where the kernel did not run it. */
type PerKernel<T> = (T | null)[];

export interface Comparison {
  scenario: string;
  file: string;
  kernels: CompareKernel[];
  measurements: {
    label: string;
    function: string;
    target: PerKernel<string>;
    via: PerKernel<string>;
    trampolineSize: PerKernel<number>;
    instructions: PerKernel<number>;
  }[];
  trampolines: PerKernel<number>;
  moduleBytes: PerKernel<number>;
  warnings: PerKernel<string[]>;
  /** Every check any kernel made: true passed, false failed, null not made there (an `only` block, a skipped kernel). */
  checks: { name: string; passed: PerKernel<boolean> }[];
  /** Every kernel that ran passed. */
  passed: boolean;
}

/** Runs `s` on each era with each kind of call site (the scenario's own kind when `callsites` is not given). */
export async function compareScenario(s: Scenario, eras: readonly Era[], callsites: readonly CallSites[] = [s.config.callsites]): Promise<Comparison> {
  const kernels = eras.flatMap((era) => callsites.map((kind) => ({ era, callsites: kind })));
  // Every kernel's names are resolved before the first boots.
  for (const k of kernels) if (!skipReason(s, k.era, k.callsites)) await checkReferences(s, k.era, k.callsites);
  const results: ScenarioResult[] = [];
  // The kernels are the comparison: a scenario's variant is not run here.
  for (const k of kernels) results.push(await runScenario(s, { ...k, referencesChecked: true, variant: false }));
  const ran = (r: ScenarioResult) => !r.skipped;
  const per = <T>(f: (r: ScenarioResult) => T): PerKernel<T> => results.map((r) => (ran(r) ? f(r) : null));

  const labels: { label: string; function: string }[] = [];
  for (const r of results) for (const m of r.measurements) if (!labels.some((l) => l.label === m.label)) labels.push({ label: m.label, function: m.function });
  const names: string[] = [];
  for (const r of results) for (const ch of r.checks) if (!names.includes(ch.name)) names.push(ch.name);

  return {
    scenario: s.name,
    file: s.file,
    kernels: results.map((r) => ({
      label: callsites.length > 1 ? `${r.era} ${r.callsites}` : r.era,
      era: r.era,
      callsites: r.callsites,
      version: eraRules(r.era).version,
      ...(r.skipped ? { skipped: r.skipped } : {}),
      passed: r.passed,
    })),
    measurements: labels.map(({ label, function: fn }) => {
      const m = (r: ScenarioResult) => r.measurements.find((x) => x.label === label);
      return {
        label,
        function: fn,
        target: results.map((r) => m(r)?.target ?? null),
        via: results.map((r) => m(r)?.via ?? null),
        trampolineSize: results.map((r) => m(r)?.trampolineSize ?? null),
        instructions: results.map((r) => m(r)?.instructions ?? null),
      };
    }),
    trampolines: per((r) => r.end.trampolines),
    moduleBytes: per((r) => r.end.moduleBytes),
    warnings: per((r) => r.warnings),
    checks: names.map((name) => ({ name, passed: results.map((r) => r.checks.find((c) => c.name === name)?.passed ?? null) })),
    passed: results.every((r) => r.passed),
  };
}
