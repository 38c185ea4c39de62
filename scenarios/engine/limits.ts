// SPDX-License-Identifier: GPL-2.0-or-later
/* A scenario file's bounds, in a module that imports nothing (the CLI reads them before it loads anything heavy). */
/** Bounds on a scenario file, all enforced before anything runs. */
export const LIMITS = {
  /** The file's size in bytes (the CLI's --max-file-size raises it). */
  fileBytes: 1024 * 1024,
  /** YAML aliases the file may expand. */
  aliases: 100,
  steps: 10_000,
  ops: 64,
  /** Patterns of one set_filter / set_notrace step. */
  patterns: 1_000,
  /** Bytes one `corrupt` step writes, and how far past its symbol it may start. */
  corruptBytes: 4096,
  corruptOffset: 16 * 1024 * 1024,
  /** `call: { times }` */
  times: 100_000,
  /** `run: { iterations }` */
  iterations: 100_000,
  /** Names in one expect map (callsite, invocations, trampolines). */
  expectEntries: 1_000,
  /** Register arguments of a call. */
  args: 6,
  /** `config: { budget_ms }`: the wall-clock budget of one call into the guest (default 10 s). */
  budgetMs: 600_000,
} as const;
