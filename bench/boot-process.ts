// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Boot at scale as a user waits for it: `ftrace-sim boot --functions N
 * --no-cache` in a child process of its own per measurement (start-up,
 * Keystone, layout, load and NOP conversion; no assembly cache), its wall
 * time and peak RSS, beside the in-process assemble+load time the command
 * reports.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'bin', 'ftrace-sim.js');
const RSS_HOOK = pathToFileURL(join(root, 'bench', 'rss-at-exit.mjs')).href;

export interface BootProcessRow {
  functions: number;
  runs: number;
  /** Whole process, shortest and median of the runs. */
  wallMsMin: number;
  wallMsMedian: number;
  /** Peak RSS, the smallest of the runs' peaks. */
  maxRssMb: number;
  /** What the command itself reports: assemble + load, and the whole boot, shortest of the runs. */
  assembleLoadMs: number;
  bootMs: number;
  /** Targets: whole-process wall time and peak RSS. */
  targetMs: number;
  targetRssMb: number | undefined;
}

interface Run {
  wallMs: number;
  maxRssKb: number;
  assembleMs: number;
  loadMs: number;
  totalMs: number;
}

function runOnce(functions: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'boot', '--functions', String(functions), '--no-cache', '--json'], {
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
      if (code !== 0 || !rss) return reject(new Error(`boot --functions ${functions} exited ${code}: ${err.trim().slice(0, 400)}`));
      const t = (JSON.parse(out) as { timings: { assembleMs: number; loadMs: number; totalMs: number } }).timings;
      resolve({ wallMs, maxRssKb: Number(rss[1]), assembleMs: t.assembleMs, loadMs: t.loadMs, totalMs: t.totalMs });
    });
  });
}

const r1 = (x: number) => Math.round(x * 10) / 10;

export async function benchBootProcess(sizes: readonly { functions: number; runs: number; targetMs: number; targetRssMb?: number }[]): Promise<BootProcessRow[]> {
  const rows: BootProcessRow[] = [];
  for (const s of sizes) {
    const runs: Run[] = [];
    for (let i = 0; i < s.runs; i++) runs.push(await runOnce(s.functions));
    const walls = runs.map((r) => r.wallMs).sort((a, b) => a - b);
    rows.push({
      functions: s.functions,
      runs: s.runs,
      wallMsMin: Math.round(walls[0]!),
      wallMsMedian: Math.round(walls[Math.floor(walls.length / 2)]!),
      maxRssMb: r1(Math.min(...runs.map((r) => r.maxRssKb)) / 1024),
      assembleLoadMs: r1(Math.min(...runs.map((r) => r.assembleMs + r.loadMs))),
      bootMs: r1(Math.min(...runs.map((r) => r.totalMs))),
      targetMs: s.targetMs,
      targetRssMb: s.targetRssMb,
    });
  }
  return rows;
}
