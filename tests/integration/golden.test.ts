// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Golden reports of every built-in scenario: what `run --all` prints on each
 * kernel, comparisons across kernels and call-site kinds, and the failing
 * checks of tests/fixtures/every-check-fails.yaml on the other kernels. They take
 * seconds each, so they live here rather than in the unit suite;
 * `UPDATE_GOLDEN=1 npm run test:integration -- tests/integration/golden`
 * writes them anew.
 */
import { golden } from '../helpers.js';

const FAILS = 'tests/fixtures/every-check-fails.yaml';

describe('golden reports of the built-in scenarios, and of every kind of failed check on the other kernels', () => {
  test.each([
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
  ])('%s', async (name, args) => {
    await golden(name, ['compare', ...args]);
  });
});
