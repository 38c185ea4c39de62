// SPDX-License-Identifier: GPL-2.0-or-later
/* What several test files need: the CLI in-process, a golden report, a file on disk, a loader error, a booted kernel closed after use. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

/**
 * Runs the CLI in-process and compares all it printed, and its exit status,
 * with tests/golden/<name>.txt. UPDATE_GOLDEN=1 rewrites the file instead.
 */
export async function golden(name: string, args: string[]): Promise<void> {
  const { code, out, err } = await cli(...args);
  const text = `$ ftrace-sim ${args.join(' ')}\nexit ${code}\n${out}${err ? `stderr:\n${err}` : ''}`;
  const dir = path.join(process.cwd(), 'tests', 'golden');
  const file = path.join(dir, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, text);
    if (!process.env.UPDATE_GOLDEN) throw new Error(`${file} did not exist: written, check it and commit it`);
  }
  expect(text).toBe(readFileSync(file, 'utf8'));
}

let scratch: string | undefined;

/** Writes `text` to `name` in this test file's own temporary folder; returns its path. */
export function tempFile(name: string, text: string): string {
  scratch ??= mkdtempSync(path.join(tmpdir(), 'ftrace-sim-test-'));
  const p = path.join(scratch, name);
  writeFileSync(p, text);
  return p;
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
