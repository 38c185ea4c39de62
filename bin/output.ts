// SPDX-License-Identifier: GPL-2.0-or-later
/* Exit codes, errors and output shared by every command. */
import { writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import pc from 'picocolors';

/** 0 = all good, 1 = a check failed, 2 = bad usage or input. */
export const EXIT = { OK: 0, CHECK_FAILED: 1, USAGE: 2 } as const;

/** Bad usage or input: printed as one line, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** JSON.stringify that prints bigints as hex addresses. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? '0x' + BigInt.asUintN(64, v).toString(16) : v), 2);
}

export function printJson(value: unknown): void {
  process.stdout.write(toJson(value) + '\n');
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
