// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * npm run bench [-- --quick] [-- --json]
 * Prints tables on stdout (or one JSON document with --json). Targets are
 * shown beside the numbers; nothing here is a test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { table } from '../bin/output.js';
import { benchBoot, benchEngineCycles, benchSpeed } from './machine.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const json = args.includes('--json');
const log = (s: string) => {
  if (!json) console.log(s);
};

const cacheDir = mkdtempSync(join(tmpdir(), 'ftrace-sim-bench-'));
try {
  const sizes = quick ? [1000, 10000] : [1000, 10000, 50000];
  log('Boot: assemble (Keystone) / load / NOP conversion, cold and with the assembled kernel cached');
  const bootRows = await benchBoot(sizes, cacheDir);
  log(
    table(
      ['functions', 'records', 'assemble ms', 'load ms', 'NOP ms', 'cold total ms', 'cached total ms', 'target'],
      bootRows.map((r) => [r.functions, r.records, r.cold.assembleMs, r.cold.loadMs, r.cold.nopMs, r.cold.totalMs, r.cached.totalMs, r.functions === 50000 ? '< 3000' : '']),
    ),
  );

  log('\nGuest speed, no hooks: the simulator (Kernel.call) against a bare Unicorn engine on the same bytes');
  const speed = await benchSpeed(quick ? 2000 : 20000, quick ? 3 : 5);
  log(
    table(
      ['workload', 'guest instructions', 'simulator M insn/s', 'bare Unicorn M insn/s', 'simulator / bare', 'target'],
      speed.map((r) => [r.workload, r.instructions, r.simMips, r.bareMips, r.ratio, '<= 1.2']),
    ),
  );

  log('\nEngines: open / run / close cycles over one shared memory');
  const cycles = benchEngineCycles(quick ? 1000 : 10000);
  log(
    table(
      ['cycles', 'µs per cycle', 'engines open after', 'RSS before MB', 'RSS after MB'],
      [[cycles.cycles, cycles.usPerCycle, cycles.openEnginesAfter, cycles.rssBeforeMb, cycles.rssAfterMb]],
    ),
  );

  if (json) console.log(JSON.stringify({ boot: bootRows, speed, engineCycles: cycles }, null, 2));
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
