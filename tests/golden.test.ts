// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Golden reports: what `run` and `compare` print, byte for byte, for a file
 * in which every kind of check fails. A changed word in a check's report, a
 * comparison that turns from strict to loose, an address or a count that
 * moves: each shows here as a diff against tests/golden/.
 * (tests/integration/golden.test.ts does the same on the other kernels and
 * for every built-in scenario.) After a change meant to alter the reports,
 * `UPDATE_GOLDEN=1 npm test -- tests/golden` writes them anew; read the diff
 * before committing it.
 */
import { golden } from './helpers.js';

const FAILS = 'tests/fixtures/every-check-fails.yaml';

describe('golden reports', () => {
  test('run every-check-fails', async () => {
    await golden('every-check-fails', ['run', FAILS]);
  });

  test('compare-every-check-fails', async () => {
    await golden('compare-every-check-fails', ['compare', FAILS]);
  });
});
