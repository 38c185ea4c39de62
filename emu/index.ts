// SPDX-License-Identifier: GPL-2.0-or-later
export * from './memory.js';
export * from './hex.js';
export * from './faults.js';
export * from './engine.js';
export { GENERAL_REGS, UnicornUnavailableError, ucVersion, type RegName } from './unicorn.js';
export { timedRunCount, TICK_MS } from './watchdog.js';
