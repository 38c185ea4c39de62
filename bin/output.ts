// SPDX-License-Identifier: GPL-2.0-or-later
/* Exit codes, errors and output shared by every command. */
import { writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import pc from 'picocolors';
import { hex } from '../emu/hex.js';

/**
 * 0 = all good, 1 = a check failed, 2 = bad usage or input, 3 = a bug in
 * ftrace-sim, 4 = a run exceeded its budget (neither the guest's fault nor a
 * failed check: the work asked for did not fit).
 */
export const EXIT = { OK: 0, CHECK_FAILED: 1, USAGE: 2, INTERNAL: 3, BUDGET: 4 } as const;

/**
 * Where a command's output goes: the process's streams, or what a caller
 * of main() gives (the tests run the CLI in-process).
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

let io: Io = processIo;
let exitCode: number = EXIT.OK;

/** Directs output to `next`; returns the previous sink. */
export function useIo(next: Io): Io {
  const prev = io;
  io = next;
  return prev;
}

export function write(text: string): void {
  io.out(text);
}

export function say(line = ''): void {
  io.out(line + '\n');
}

export function writeErr(text: string): void {
  io.err(text);
}

/** The status the command ends with (checked results); errors set theirs in main(). */
export function setExitCode(code: number): void {
  exitCode = code;
}

export function currentExitCode(): number {
  return exitCode;
}

/** Bad usage or input: printed as one line, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** JSON.stringify that prints bigints as hex addresses. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? hex(v) : v), 2);
}

export function printJson(value: unknown): void {
  write(toJson(value) + '\n');
}

export const colors = pc.createColors(!!process.stdout.isTTY && !process.env.NO_COLOR);

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: process.stdout.isTTY ? ['cyan'] : [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

/** Parses a whole number option, or throws a UsageError naming the option. */
export function intOption(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} takes a whole number, not '${value}'`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${name} must be from ${min} to ${max}, not ${n}`);
  return n;
}

/** Writes an output file the user named; a path that cannot be written is bad input (exit 2). */
export function writeOutputFile(option: string, file: string, data: string | Uint8Array): void {
  try {
    writeFileSync(file, data);
  } catch (e) {
    throw new UsageError(`${option} ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** --seed: the value given, or a fresh random one (which the command prints, so the run replays). */
export function seedOption(v: string | undefined): number {
  return v === undefined ? Math.floor(Math.random() * 0x7fffffff) : intOption('--seed', v, 0, 0x7fffffff);
}
