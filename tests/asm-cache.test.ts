// SPDX-License-Identifier: GPL-2.0-or-later
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleProgram } from '../asm/assembler.js';
import { CACHE_MAX_ENTRIES } from '../asm/cache.js';
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

describe('assembly cache entries', () => {
  const BASE = 0xffffffff81000000n;
  const units = (n: number) => [{ name: `c${n}.S`, text: `__fentry__:\n\tretq\nf${n}:\n\tFENTRY\n\tmovl $${n}, %eax\n\tretq\n` }];

  test('a flipped byte is caught by the checksum, reported, and the entry rewritten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asm-cache-flip-'));
    try {
      const a = await assembleProgram(units(1), { base: BASE, cacheDir: dir });
      const [file] = readdirSync(dir);
      const path = join(dir, file!);
      const raw = readFileSync(path);
      raw[raw.length - 3] = raw[raw.length - 3]! ^ 0x40; // inside the code bytes
      writeFileSync(path, raw);
      const messages: string[] = [];
      const b = await assembleProgram(units(1), { base: BASE, cacheDir: dir, onCacheMessage: (m) => messages.push(m) });
      expect(b.fromCache).toBe(false);
      expect(messages).toEqual([expect.stringMatching(/damaged.*checksum mismatch.*assembled again/)]);
      expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
      const c = await assembleProgram(units(1), { base: BASE, cacheDir: dir, onCacheMessage: (m) => messages.push(m) });
      expect(c.fromCache).toBe(true);
      expect(messages.length).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the cache directory keeps at most CACHE_MAX_ENTRIES entries, the newest, and drops the old format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asm-cache-bound-'));
    try {
      writeFileSync(join(dir, '0123456789abcdef0123456789abcdef.bin'), 'old format');
      writeFileSync(join(dir, 'notes.txt'), 'not ours');
      for (let n = 0; n < CACHE_MAX_ENTRIES + 3; n++) await assembleProgram(units(n), { base: BASE, cacheDir: dir });
      const left = readdirSync(dir);
      expect(left.filter((f) => f.endsWith('.asm')).length).toBe(CACHE_MAX_ENTRIES);
      expect(left).toContain('notes.txt');
      expect(left.some((f) => f.endsWith('.bin'))).toBe(false);
      // The newest entry is still there.
      const last = await assembleProgram(units(CACHE_MAX_ENTRIES + 2), { base: BASE, cacheDir: dir });
      expect(last.fromCache).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
