// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What a torture run checks once every ops has gone: nothing left behind.
 * No record still counts an ops, module memory holds only the trampolines
 * static ops keep (v3.18+: they are reused on the next registration), and
 * the kernel logged no warning. And the verdict every torture result starts with.
 */
import type { Ftrace } from '../ftrace/core.js';

export function leftovers(ftrace: Ftrace, keptModuleBytes = 0): string[] {
  const { kernel } = ftrace;
  const found: string[] = [];
  const dirty = ftrace.records.all().filter((r) => r.flags !== 0);
  if (dirty.length) found.push(`${dirty.length} records still have flags after every ops left (first: ${ftrace.recordName(dirty[0]!)})`);
  const moduleBytes = kernel.moduleSpace?.bytesInUse ?? 0;
  if (moduleBytes !== keptModuleBytes) {
    found.push(`${moduleBytes} bytes of module memory are in use; ${keptModuleBytes ? `the static ops' kept trampolines account for ${keptModuleBytes}` : 'none should be'}`);
  }
  found.push(...kernel.dmesg);
  return found;
}

/** The head of a torture result: the run's parameters, and whether it found no violation. */
export function verdict(o: { cpus: number; changes: number; seed: number }, violations: string[]): { cpus: number; changes: number; seed: number; passed: boolean; violations: string[] } {
  return { cpus: o.cpus, changes: o.changes, seed: o.seed, passed: violations.length === 0, violations };
}
