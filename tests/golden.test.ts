// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Golden reports: what `run` and `compare` print, byte for byte, for every
 * built-in scenario on each kernel and for a file in which every kind of check
 * fails. A changed word in a check's report, a comparison that turns from
 * strict to loose, an address or a count that moves: each shows here as a
 * diff against tests/golden/. After a change meant to alter the reports,
 * `UPDATE_GOLDEN=1 npm test -- tests/golden` writes them anew; read the diff
 * before committing it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli } from './helpers.js';

const DIR = path.join(process.cwd(), 'tests', 'golden');
const FAILS = 'tests/fixtures/every-check-fails.yaml';

async function golden(name: string, args: string[]): Promise<void> {
  const { code, out, err } = await cli(...args);
  const text = `$ ftrace-sim ${args.join(' ')}\nexit ${code}\n${out}${err ? `stderr:\n${err}` : ''}`;
  const file = path.join(DIR, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(file, text);
    if (!process.env.UPDATE_GOLDEN) throw new Error(`${file} did not exist: written, check it and commit it`);
  }
  expect(text).toBe(readFileSync(file, 'utf8'));
}

describe('golden reports', () => {
  test.each([
    ['every-check-fails', [FAILS]],
    ['every-check-fails-modern', ['--era', 'modern', FAILS]],
    ['every-check-fails-3.17', ['--era', '3.17', FAILS]],
    ['run-all', ['--all']],
    ['run-all-modern', ['--all', '--era', 'modern']],
    ['run-all-3.17', ['--all', '--era', '3.17']],
    ['run-all-mcount', ['--all', '--callsites', 'mcount']],
  ])('run %s', async (name, args) => {
    await golden(name, ['run', ...args]);
  });

  test.each([
    ['compare-two-static-ops', ['two-static-ops']],
    ['compare-unregister-mcount', ['unregister', '--callsites', 'fentry,mcount']],
    ['compare-every-check-fails', [FAILS]],
  ])('%s', async (name, args) => {
    await golden(name, ['compare', ...args]);
  });
});
