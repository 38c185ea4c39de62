// SPDX-License-Identifier: GPL-2.0-or-later
/* Shared by the commands that look at a scenario's kernel: which scenario, which step, which ops. */
import { builtinScenarioFiles, displayPath, resolveScenario } from '../../scenarios/engine/catalog.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import { UsageError, intOption } from '../output.js';

/** Loads lazily: the YAML and schema code is not needed for --help. */
export async function loadScenarioArg(name: string): Promise<Scenario> {
  const { loadScenarioFile } = await import('../../scenarios/engine/load.js');
  const f = resolveScenario(name);
  if (!f) {
    const names = builtinScenarioFiles().map((x) => displayPath(x).replace(/^scenarios\/|\.ya?ml$/g, ''));
    throw new UsageError(`no scenario '${name}': not a file, nor one of ${names.join(', ')}`);
  }
  return loadScenarioFile(f, displayPath(f));
}

export function stepOption(s: Scenario, step: string | undefined): number | undefined {
  return step === undefined ? undefined : intOption('--step', step, 0, Math.max(0, s.steps.length - 1));
}
