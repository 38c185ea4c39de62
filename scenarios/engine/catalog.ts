// SPDX-License-Identifier: GPL-2.0-or-later
/* The built-in scenarios (scenarios/*.yaml) and how a name on the command line finds a file. */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { packageRoot } from '../../emu/package-root.js';

export const SCENARIO_DIR = join(packageRoot(import.meta.url), 'scenarios');

export function builtinScenarioFiles(): string[] {
  return readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(SCENARIO_DIR, f));
}

/** A path to a file, or the name of a built-in scenario; undefined when neither exists. */
export function resolveScenario(arg: string): string | undefined {
  if (existsSync(arg) && /\.ya?ml$/.test(arg)) return arg;
  for (const f of builtinScenarioFiles()) {
    if (basename(f, '.yaml') === arg) return f;
  }
  return undefined;
}

export function displayPath(file: string): string {
  return file.startsWith(SCENARIO_DIR) ? join('scenarios', file.slice(SCENARIO_DIR.length + 1)) : file;
}
