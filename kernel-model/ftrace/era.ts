// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What ftrace does differently from one kernel era to the next, in one
 * table: the policy and the arch read these rules instead of testing the
 * era by name, so an era is added by adding a row.
 */
import type { Era } from '../kernel.js';

export interface EraRules {
  /** FTRACE_OPS_FL_IPMODIFY exists (v3.19, f8b8be8a310a); before it the flag is bad input. */
  ipmodify: boolean;
  /**
   * A record whose count drops back to one goes back to the remaining ops'
   * trampoline (ftrace_find_tramp_ops_any_other); v3.18/3.19 leave it on the shared caller.
   */
  trampolineOnDecrement: boolean;
  /** The int3 handler emulates the new instruction (text_poke_bp); v3.x skips the site. */
  int3EmulatesNewInsn: boolean;
  /** Dynamic ops get trampolines unless the configuration says otherwise (v4.12+, 0598e4f08e3d). */
  dynamicTrampolines: boolean;
  /** What ftrace_shutdown waits for before freeing a dynamic ops' trampoline. */
  trampolineSync: 'schedule_on_each_cpu' | 'rcu_tasks';
  /**
   * What ftrace_ops_get_func() gives an ops that ftrace must protect from
   * recursion: v3.18 ftrace_ops_recurs_func, v4.x+ ftrace_ops_assist_func.
   */
  recursionHelper: 'ftrace_ops_recurs_func' | 'ftrace_ops_assist_func';
  /** ftrace_ops_get_func() sends a dynamic ops to the list function (v3.x); later only update_ftrace_function() does. */
  dynamicOpsGetListFunc: boolean;
  /** Which t_show() prints enabled_functions. */
  enabledFunctions: '3.18' | 'modern';
  /** trace_print_context(): the width of the pid column ("%-5d", later "%-7d"). */
  tracePidWidth: number;
}

const RULES: Readonly<Record<Era, EraRules>> = {
  '3.18': {
    ipmodify: false,
    trampolineOnDecrement: false,
    int3EmulatesNewInsn: false,
    dynamicTrampolines: false,
    trampolineSync: 'schedule_on_each_cpu',
    recursionHelper: 'ftrace_ops_recurs_func',
    dynamicOpsGetListFunc: true,
    enabledFunctions: '3.18',
    tracePidWidth: 5,
  },
  modern: {
    ipmodify: true,
    trampolineOnDecrement: true,
    int3EmulatesNewInsn: true,
    dynamicTrampolines: true,
    trampolineSync: 'rcu_tasks',
    recursionHelper: 'ftrace_ops_assist_func',
    dynamicOpsGetListFunc: false,
    enabledFunctions: 'modern',
    tracePidWidth: 7,
  },
};

export function eraRules(era: Era): EraRules {
  return RULES[era];
}
