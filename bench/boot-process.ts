// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Boot at scale as a user waits for it: `ftrace-sim boot --functions N
 * --no-cache` in a child process of its own per measurement (start-up,
 * Keystone, layout, load and NOP conversion; no assembly cache), its wall
 * time and peak RSS, beside the in-process assemble+load time the command
 * reports.
 */
import { runCli } from './process-times.js';

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

async function runOnce(functions: number): Promise<Run> {
  const r = await runCli(['boot', '--functions', String(functions), '--no-cache', '--json']);
  if (r.code !== 0) throw new Error(`boot --functions ${functions} exited ${r.code}`);
  const t = (JSON.parse(r.stdout) as { timings: { assembleMs: number; loadMs: number; totalMs: number } }).timings;
  return { wallMs: r.wallMs, maxRssKb: r.maxRssMb * 1024, assembleMs: t.assembleMs, loadMs: t.loadMs, totalMs: t.totalMs };
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
