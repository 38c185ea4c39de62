// SPDX-License-Identifier: GPL-2.0-or-later
/* What several test files need: the CLI in-process, a loader error, a booted kernel closed after use. */
import { main } from '../bin/main.js';
import { boot, type Booted } from '../kernel-model/boot.js';
import type { KernelConfig } from '../kernel-model/kernel.js';
import { ScenarioError, loadScenarioText } from '../scenarios/engine/load.js';

/** Runs ftrace-sim's CLI in this process; returns its exit status and what it printed. */
export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** The ScenarioError that loading `text` must throw. */
export function loadError(text: string, file: string): ScenarioError {
  try {
    loadScenarioText(text, file);
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('expected a ScenarioError');
}

/** Boots a kernel, hands it to `fn`, and closes it whatever `fn` does. */
export async function withKernel<T>(config: Partial<KernelConfig>, fn: (b: Booted) => T | Promise<T>): Promise<T> {
  const booted = await boot(config);
  try {
    return await fn(booted);
  } finally {
    booted.kernel.close();
  }
}
