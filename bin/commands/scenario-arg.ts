// SPDX-License-Identifier: GPL-2.0-or-later
/* Shared by the commands that look at a scenario's kernel: which scenario, which step, which ops. */
import { builtinScenarioFiles, displayPath, resolveScenario } from '../../scenarios/engine/catalog.js';
import { loadScenarioFile } from '../../scenarios/engine/load.js';
import { LIMITS } from '../../scenarios/engine/schema.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import { UsageError, intOption } from '../output.js';

let maxFileBytes: number = LIMITS.fileBytes;

/** --max-file-size, a program-wide option, read before any command runs. */
export function setMaxFileSize(bytes: string | undefined): void {
  maxFileBytes = bytes === undefined ? LIMITS.fileBytes : intOption('--max-file-size', bytes, 1, 1024 * 1024 * 1024);
}

/** A built-in scenario's name, or a file; loaded and checked, within the file size limit. */
export function loadScenarioArg(name: string): Scenario {
  const f = resolveScenario(name);
  if (!f) {
    const names = builtinScenarioFiles().map((x) => displayPath(x).replace(/^scenarios\/|\.ya?ml$/g, ''));
    throw new UsageError(`no scenario '${name}': not a file, nor one of ${names.join(', ')}`);
  }
  return loadScenarioFile(f, displayPath(f), maxFileBytes);
}

export function stepOption(s: Scenario, step: string | undefined): number | undefined {
  return step === undefined ? undefined : intOption('--step', step, 0, Math.max(0, s.steps.length - 1));
}
