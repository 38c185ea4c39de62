// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What a user waits for, whole process: the installed command
 * (bin/ftrace-sim.js, the build in dist/) run in a child process per
 * measurement, its wall time and peak RSS. Also torture's memory over many
 * changes: the peak RSS of two runs of different lengths, whose difference
 * per change is the growth (a flat campaign adds nothing per change).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'bin', 'ftrace-sim.js');
const RSS_HOOK = pathToFileURL(join(root, 'bench', 'rss-at-exit.mjs')).href;

/** The CLI runs from dist/: build it when it is missing (npm ci builds it; a fresh edit needs `npm run build`). */
export function ensureBuilt(): void {
  if (existsSync(join(root, 'dist', 'bin', 'cli.js'))) return;
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
}

export interface ProcessRun {
  wallMs: number;
  maxRssMb: number;
  code: number;
  stdout: string;
}

export function runCli(args: readonly string[]): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${RSS_HOOK}`.trim() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      const rss = /ftrace-sim-bench maxrss_kb=(\d+)/.exec(err);
      if (!rss) return reject(new Error(`ftrace-sim ${args.join(' ')} exited ${code} without its RSS: ${err.trim().slice(0, 400)}`));
      resolve({ wallMs, maxRssMb: Math.round(Number(rss[1]) / 102.4) / 10, code: code ?? -1, stdout: out });
    });
  });
}

export interface WallRow {
  command: string;
  runs: number;
  wallMsMin: number;
  wallMsMedian: number;
  maxRssMb: number;
}

/** The shortest and median wall time of `runs` runs of the command (each must exit 0). */
export async function benchWall(args: readonly string[], runs: number): Promise<WallRow> {
  const walls: number[] = [];
  let rss = Infinity;
  for (let i = 0; i < runs; i++) {
    const r = await runCli(args);
    if (r.code !== 0) throw new Error(`ftrace-sim ${args.join(' ')} exited ${r.code}`);
    walls.push(r.wallMs);
    rss = Math.min(rss, r.maxRssMb);
  }
  walls.sort((a, b) => a - b);
  return { command: `ftrace-sim ${args.join(' ')}`, runs, wallMsMin: Math.round(walls[0]!), wallMsMedian: Math.round(walls[Math.floor(runs / 2)]!), maxRssMb: rss };
}

export interface TortureMemoryRow {
  shortChanges: number;
  longChanges: number;
  shortRssMb: number;
  longRssMb: number;
  /** (long - short) / (longChanges - shortChanges), in KB. */
  kbPerChange: number;
  /** kbPerChange over 200,000 changes, in MB: an extrapolation. */
  extrapolated200kMb: number;
}

export async function benchTortureMemory(shortChanges: number, longChanges: number): Promise<TortureMemoryRow> {
  const run = async (n: number) => {
    const r = await runCli(['torture', '--cpus', '4', '--changes', String(n), '--seed', '1', '--json']);
    if (r.code !== 0) throw new Error(`torture --changes ${n} exited ${r.code}`);
    return r.maxRssMb;
  };
  const shortRssMb = await run(shortChanges);
  const longRssMb = await run(longChanges);
  const kbPerChange = Math.round(((longRssMb - shortRssMb) * 1024 * 100) / (longChanges - shortChanges)) / 100;
  return { shortChanges, longChanges, shortRssMb, longRssMb, kbPerChange, extrapolated200kMb: Math.round((kbPerChange * 200_000) / 1024) };
}
