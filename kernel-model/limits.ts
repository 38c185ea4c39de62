// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The model kernel's bounds and eras, in a module that imports nothing: the
 * CLI shows them in --help without loading Unicorn or Keystone.
 */
export const ERAS = ['3.17', '3.18', '3.19', 'modern'] as const;
export type Era = (typeof ERAS)[number];
/** How traced functions call into ftrace: -mfentry's `call __fentry__`, or -pg's `call mcount`. */
export const CALL_SITES = ['fentry', 'mcount'] as const;
export type CallSites = (typeof CALL_SITES)[number];
/** Other names an era is known by: 'seed' is v3.18, the kernel that introduced per-ops trampolines. */
export const ERA_ALIASES: Readonly<Record<string, Era>> = { seed: '3.18' };

/** An era by name or alias; undefined for anything else. */
export function parseEra(name: string): Era | undefined {
  return (ERAS as readonly string[]).includes(name) ? (name as Era) : ERA_ALIASES[name];
}

export const MAX_FUNCTIONS = 200_000;
export const MAX_CPUS = 8;
