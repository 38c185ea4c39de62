// SPDX-License-Identifier: GPL-2.0-or-later
/* Shared by the commands that look at a scenario's kernel: which scenario, which step, which ops. */
import { builtinScenarioFiles, displayPath, resolveScenario } from '../../scenarios/engine/catalog.js';
import { LIMITS } from '../../scenarios/engine/limits.js';
import type { Scenario } from '../../scenarios/engine/types.js';
import type { RunHooks } from '../../scenarios/engine/run.js';
import type { BackgroundCpus } from '../../kernel-model/smp/background-cpus.js';
import { MAX_CPUS } from '../../kernel-model/limits.js';
import { UsageError, intOption, seedOption } from '../output.js';

let maxFileBytes: number = LIMITS.fileBytes;

/** --max-file-size, a program-wide option, read before any command runs. */
export function setMaxFileSize(bytes: string | undefined): void {
  maxFileBytes = bytes === undefined ? LIMITS.fileBytes : intOption('--max-file-size', bytes, 1, 1024 * 1024 * 1024);
}

export function maxFileSize(): number {
  return maxFileBytes;
}

/** The file a built-in scenario's name or a path names, and how messages show it. */
export function resolveScenarioArg(name: string): { file: string; display: string } {
  const f = resolveScenario(name);
  if (!f) {
    const names = builtinScenarioFiles().map((x) => displayPath(x).replace(/^scenarios\/|\.ya?ml$/g, ''));
    throw new UsageError(`no scenario '${name}': not a file, nor one of ${names.join(', ')}`);
  }
  return { file: f, display: displayPath(f) };
}

/** A built-in scenario's name, or a file; loaded and checked, within the file size limit. */
export async function loadScenarioArg(name: string): Promise<Scenario> {
  const { file, display } = resolveScenarioArg(name);
  // The loader brings YAML, TypeBox and Ajv: loaded when a command runs, not for --help.
  const { loadScenarioFile } = await import('../../scenarios/engine/load.js');
  return loadScenarioFile(file, display, maxFileBytes);
}

export function stepOption(s: Scenario, step: string | undefined): number | undefined {
  return step === undefined ? undefined : intOption('--step', step, 0, Math.max(0, s.steps.length - 1));
}

/** --cpus and --seed of the commands that run a scenario to look at its trace. */
export interface CpusOptions {
  cpus?: string;
  seed?: string;
}

/**
 * With --cpus N > 1, the scenario's kernel gets N CPUs and CPUs 1..N-1 run
 * workloads under the seeded scheduler (startBackgroundCpus). `finish` must
 * be called before reading the trace; `seed` is the one used (printed so the
 * run can be replayed).
 */
export async function backgroundCpusHooks(o: CpusOptions): Promise<{ hooks: RunHooks; finish: () => void; seed: number | null; cpus: number }> {
  const cpus = o.cpus === undefined ? 1 : intOption('--cpus', o.cpus, 1, MAX_CPUS);
  if (cpus === 1) {
    if (o.seed !== undefined) throw new UsageError('--seed goes with --cpus 2 or more');
    return { hooks: {}, finish: () => {}, seed: null, cpus };
  }
  const seed = seedOption(o.seed);
  let bg: BackgroundCpus | undefined;
  const { startBackgroundCpus } = await import('../../kernel-model/smp/background-cpus.js');
  return {
    hooks: {
      kernelConfig: { cpus },
      onBoot: (kernel, ftrace) => {
        bg = startBackgroundCpus({ kernel, ftrace }, seed);
        return bg.afterStep;
      },
    },
    finish: () => bg?.finish(),
    seed,
    cpus,
  };
}
