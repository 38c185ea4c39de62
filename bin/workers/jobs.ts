// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The work a CLI command may hand to worker threads: each kind takes a
 * structured-cloneable input and gives a structured-cloneable result, so the
 * same function runs in the main thread (--jobs 1) or in a worker.
 */
import type { CallSites, Era } from '../../kernel-model/limits.js';
import { torture, type TortureOptions, type TortureResult } from '../../kernel-model/smp/torture.js';
import { loadScenarioFile } from '../../scenarios/engine/load.js';
import { runScenario, type ScenarioResult } from '../../scenarios/engine/run.js';

export interface JobKinds {
  /** A scenario file, loaded again in the worker (it and its names were checked in the main thread first). */
  scenario: { input: { file: string; display: string; maxBytes?: number; era?: Era; callsites?: CallSites }; output: { result: ScenarioResult; seconds: number } };
  torture: { input: TortureOptions; output: TortureResult };
}
export type JobKind = keyof JobKinds;

export const JOBS: { [K in JobKind]: (input: JobKinds[K]['input']) => Promise<JobKinds[K]['output']> } = {
  scenario: async ({ file, display, maxBytes, era, callsites }) => {
    const t0 = performance.now();
    const result = await runScenario(loadScenarioFile(file, display, maxBytes), { referencesChecked: true, ...(era ? { era } : {}), ...(callsites ? { callsites } : {}) });
    return { result, seconds: (performance.now() - t0) / 1000 };
  },
  torture: async (o) => torture(o),
};
