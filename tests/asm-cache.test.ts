// SPDX-License-Identifier: GPL-2.0-or-later
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot } from '../kernel-model/boot.js';

describe('the assembly cache', () => {
  test('each cache file, truncated, is detected and rebuilt with a message, and boot still works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asm-cache-trunc-'));
    try {
      const first = await boot({ functions: 300, cacheDir: dir });
      const records = first.ftrace.records.length;
      first.kernel.close();
      const files = readdirSync(dir);
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) {
        const path = join(dir, f);
        truncateSync(path, Math.floor(statSync(path).size / 2));
        const again = await boot({ functions: 300, cacheDir: dir });
        try {
          expect(again.timings.fromCache).toBe(false);
          expect(again.kernel.program.cacheMessage).toMatch(/damaged.*assembl/i);
          expect(again.ftrace.records.length).toBe(records);
        } finally {
          again.kernel.close();
        }
        // Rebuilt: the next boot uses the cache again, silently.
        const next = await boot({ functions: 300, cacheDir: dir });
        try {
          expect(next.timings.fromCache).toBe(true);
          expect(next.kernel.program.cacheMessage).toBeUndefined();
        } finally {
          next.kernel.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
