// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace's variables in kernel data (function_trace_op, ftrace_ops_list, the
 * ftrace_list_end stub ops, static ftrace_ops), and the bounds of ftrace's
 * text: the callers, the list function and the callbacks, which the x86
 * sources mark with __ftrace_text_start / __ftrace_text_end, plus module
 * space, where trampolines live.
 */
import type { SymbolTable } from '../../asm/symbols.js';
import type { GuestMemory } from '../../emu/index.js';
import { FTRACE_OPS_FL, MODULES_SIZE, MODULES_VADDR, OPS, STATS } from '../abi.js';
import type { DataLayout } from '../allocator.js';
import type { CodeRange } from '../machine.js';

export const STATIC_OPS_POOL_SIZE = 64 * 1024;

/** The scalars and the list-end ops, laid out before the kernel's other data. */
export function placeFtraceData(l: DataLayout): void {
  l.place('function_trace_op', 8);
  l.place('ftrace_trace_function', 8);
  l.place('ftrace_ops_list', 8);
  l.place('ftrace_list_end', OPS.SIZE, 64);
  l.place('ftrace_list_end_stats', STATS.SIZE);
}

/** Storage for ftrace_ops declared static (core kernel data), after the kernel's other data. */
export function placeStaticOpsPool(l: DataLayout): void {
  l.place('__static_ops_pool', STATIC_OPS_POOL_SIZE, 64);
}

/** ftrace_list_end: the STUB ops that ends every list; function_trace_op starts there. */
export function initFtraceData(m: GuestMemory, sym: (name: string) => bigint): void {
  const end = sym('ftrace_list_end');
  m.writeU64(end + BigInt(OPS.FUNC), sym('ftrace_stub'));
  m.writeU64(end + BigInt(OPS.NEXT), end);
  m.writeU64(end + BigInt(OPS.FLAGS), FTRACE_OPS_FL.STUB);
  m.writeU64(end + BigInt(OPS.PRIVATE), sym('ftrace_list_end_stats'));
  m.writeU64(sym('ftrace_ops_list'), end);
  m.writeU64(sym('function_trace_op'), end);
  m.writeU64(sym('ftrace_trace_function'), sym('ftrace_stub'));
}

const TEXT_START = '__ftrace_text_start';
const TEXT_END = '__ftrace_text_end';

/**
 * ftrace's code as [first, last] ranges: its text, between the markers the
 * x86 sources put around it, and module space when there is one. The
 * markers bound code and name none of it, so they leave kallsyms here.
 */
export function takeFtraceCodeRanges(symbols: SymbolTable, modules: boolean): CodeRange[] {
  const start = symbols.addr(TEXT_START);
  const end = symbols.addr(TEXT_END);
  symbols.remove(TEXT_START);
  symbols.remove(TEXT_END);
  const ranges: CodeRange[] = [[start, end - 1n]];
  if (modules) ranges.push([MODULES_VADDR, MODULES_VADDR + BigInt(MODULES_SIZE) - 1n]);
  return ranges;
}
