// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The same measurements on each Unicorn library available: a library is
 * loaded once per process, so bench.ts runs this file in a child process per
 * library (FTRACE_SIM_LIBUNICORN) and reads the JSON it prints.
 *   node --import tsx bench/versions.ts [--quick]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { packageRoot } from '../emu/package-root.js';

export interface VersionRow {
  library: string;
  version: string;
  /** Guest instructions per second (millions), Kernel.call and bare engine, syscall loop. */
  simMips: number;
  bareMips: number;
  /** Wall time per traced call through a trampoline (no irrelevant ops), and the bare engine's. */
  tracedCallNs: number;
  bareTracedCallNs: number;
  /** A short Kernel.call (__task_pid_nr_ns) against the bare engine. */
  shortCallNs: number;
  bareShortCallNs: number;
  shortCallRatio: number;
}

const root = packageRoot(import.meta.url);

/** The libraries to compare: the system's and the vendored 2.1.4 beside the clone, when present. */
export function librariesToCompare(): { label: string; path: string | undefined }[] {
  const libs: { label: string; path: string | undefined }[] = [{ label: 'system', path: undefined }];
  const vendored = join(root, '..', 'shared', 'vendor', 'unicorn-2.1.4', 'libunicorn.so.2');
  if (existsSync(vendored)) libs.push({ label: 'vendored', path: vendored });
  return libs;
}

/** Runs this file once per library; a library that fails gives an error row, not a crash. */
export function benchVersions(quick: boolean): (VersionRow | { library: string; error: string })[] {
  return librariesToCompare().map(({ label, path }) => {
    const env = { ...process.env };
    if (path) env.FTRACE_SIM_LIBUNICORN = path;
    else delete env.FTRACE_SIM_LIBUNICORN;
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'versions.ts'), '--child', ...(quick ? ['--quick'] : [])], {
      cwd: root,
      env,
      encoding: 'utf8',
    });
    if (r.status !== 0) return { library: label, error: (r.stderr || '').trim().split('\n').slice(-1)[0] ?? `exit ${r.status}` };
    return { ...(JSON.parse(r.stdout) as VersionRow), library: label };
  });
}

async function child(quick: boolean): Promise<VersionRow> {
  const { ucVersion } = await import('../emu/unicorn.js');
  const { benchSpeed } = await import('./machine.js');
  const { benchHostCost } = await import('./ftrace.js');
  const { benchShortCall } = await import('./short-call.js');
  const speed = (await benchSpeed(quick ? 2000 : 20000, quick ? 3 : 5)).find((r) => r.workload.startsWith('syscalls'))!;
  const traced = (await benchHostCost([0], quick ? 5000 : 20000)).find((r) => r.config === 'trampolines' && !r.saveRegs)!;
  const short = (await benchShortCall(quick ? 500 : 2000))[0]!;
  return {
    library: '',
    version: ucVersion(),
    simMips: speed.simMips,
    bareMips: speed.bareMips,
    tracedCallNs: traced.nsPerCall,
    bareTracedCallNs: traced.bareNsPerCall,
    shortCallNs: short.simNsPerCall,
    bareShortCallNs: short.bareNsPerCall,
    shortCallRatio: short.ratio,
  };
}

if (process.argv.includes('--child')) {
  console.log(JSON.stringify(await child(process.argv.includes('--quick'))));
}
