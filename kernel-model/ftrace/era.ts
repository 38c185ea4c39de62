// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What ftrace does differently from one kernel era to the next, in one
 * table: the policy and the arch read these rules instead of testing the
 * era by name, so an era is added by adding a row.
 */
import type { Era } from '../kernel.js';

export interface EraRules {
  /** The kernel version the era follows, as the reports name it. */
  version: string;
  /**
   * The era's ftrace entry code under kernel-model/x86/: v3.x's
   * mcount_64.S (the seed added the markers trampolines copy from),
   * v6's ftrace_64.S.
   */
  entryCode: string;
  /** Per-ops trampolines exist (the seed, v3.18). */
  trampolines: boolean;
  /** Kernels built with -pg alone (mcount call sites) were possible; x86-64 v5.x+ needs -mfentry. */
  mcount: boolean;
  /** FTRACE_OPS_FL_IPMODIFY exists (v3.19, f8b8be8a310a); before it the flag is bad input. */
  ipmodify: boolean;
  /**
   * A record whose count drops back to one goes back to the remaining ops'
   * trampoline (ftrace_find_tramp_ops_any_other); v3.18/3.19 leave it on the shared caller.
   */
  trampolineOnDecrement: boolean;
  /** The int3 handler emulates the new instruction (text_poke_bp); v3.x skips the site. */
  int3EmulatesNewInsn: boolean;
  /**
   * Which dynamic ops get trampolines: none (v3.18), those of a kernel
   * without CONFIG_PREEMPT (v3.19, 12cce594fa8f), all (v4.12+, 0598e4f08e3d).
   */
  dynamicTrampolines: 'never' | 'unless-preempt' | 'always';
  /** What ftrace_shutdown waits for before freeing a dynamic ops' trampoline. */
  trampolineSync: 'schedule_on_each_cpu' | 'rcu_tasks';
  /**
   * What ftrace_ops_get_func() gives an ops that ftrace must protect from
   * recursion: v3.18 ftrace_ops_recurs_func, v4.x+ ftrace_ops_assist_func.
   */
  recursionHelper: 'ftrace_ops_list_func' | 'ftrace_ops_recurs_func' | 'ftrace_ops_assist_func';
  /** ftrace_ops_get_func() sends a dynamic ops to the list function (v3.x); later only update_ftrace_function() does. */
  dynamicOpsGetListFunc: boolean;
  /** Which t_show() prints enabled_functions. */
  enabledFunctions: '3.18' | 'modern';
  /** trace_print_context(): the width of the pid column ("%-5d", later "%-7d"). */
  tracePidWidth: number;
  /**
   * How create_trampoline() ends a trampoline: `jmp ftrace_return` (v3.x,
   * so the graph tracer's ftrace_graph_call runs after it) or a RET of its
   * own (v5.x+, where the graph tracer is an ops).
   */
  trampolineEnd: 'jmp' | 'ret';
  /**
   * create_trampoline() writes the call to ops->func itself and the
   * trampoline is then made read-only (set_memory_rox); later updates go
   * through text_poke_bp(). v3.x left the call to ftrace_stub and wrote
   * it in place afterwards.
   */
  trampolineReadOnly: boolean;
  /** ftrace_regs_caller has the direct-call jnz a trampoline turns into a NOP (v5.9+). */
  regsCallerJmp: boolean;
  /** The graph tracer is reached through the shared ftrace_graph_call jmp (v3.x), not as an ops. */
  graphCall: boolean;
}

const V3: Omit<EraRules, 'version' | 'entryCode' | 'trampolines' | 'ipmodify' | 'dynamicTrampolines' | 'recursionHelper'> = {
  mcount: true,
  trampolineOnDecrement: false,
  int3EmulatesNewInsn: false,
  trampolineSync: 'schedule_on_each_cpu',
  dynamicOpsGetListFunc: true,
  enabledFunctions: '3.18',
  tracePidWidth: 5,
  trampolineEnd: 'jmp',
  trampolineReadOnly: false,
  regsCallerJmp: false,
  graphCall: true,
};

const RULES: Readonly<Record<Era, EraRules>> = {
  '3.17': {
    ...V3,
    version: 'v3.17',
    entryCode: 'v3.17/mcount_64.S',
    trampolines: false,
    ipmodify: false,
    dynamicTrampolines: 'never',
    // No ftrace_ops_get_func() yet: update_ftrace_function() sends an ops
    // that is not recursion safe to the list function, which protects it.
    recursionHelper: 'ftrace_ops_list_func',
  },
  '3.18': {
    ...V3,
    version: 'v3.18',
    entryCode: 'v3.18/mcount_64.S',
    trampolines: true,
    ipmodify: false,
    dynamicTrampolines: 'never',
    recursionHelper: 'ftrace_ops_recurs_func',
  },
  '3.19': {
    ...V3,
    version: 'v3.19',
    entryCode: 'v3.18/mcount_64.S',
    trampolines: true,
    ipmodify: true,
    dynamicTrampolines: 'unless-preempt',
    recursionHelper: 'ftrace_ops_recurs_func',
  },
  modern: {
    version: 'v6.x',
    entryCode: 'v6/ftrace_64.S',
    trampolines: true,
    mcount: false,
    ipmodify: true,
    trampolineOnDecrement: true,
    int3EmulatesNewInsn: true,
    dynamicTrampolines: 'always',
    trampolineSync: 'rcu_tasks',
    recursionHelper: 'ftrace_ops_assist_func',
    dynamicOpsGetListFunc: false,
    enabledFunctions: 'modern',
    tracePidWidth: 7,
    trampolineEnd: 'ret',
    trampolineReadOnly: true,
    regsCallerJmp: true,
    graphCall: false,
  },
};

export function eraRules(era: Era): EraRules {
  return RULES[era];
}
