// SPDX-License-Identifier: GPL-2.0-or-later
/* A scenario, as the loader hands it to the runner: validated, with source lines. */
import type { CallbackName, USER_OPS_FLAGS } from '../../kernel-model/abi.js';
import type { Errno } from '../../kernel-model/ftrace/core.js';
import type { Era, KernelConfig } from '../../kernel-model/kernel.js';
import type { GraphSettings } from '../../kernel-model/ftrace/fgraph.js';
import type { StaticNode } from '../../kernel-model/trace/graph-tree.js';
import type { WorkloadName as Workload } from '../../kernel-model/workloads/workloads.js';

export interface Where {
  file: string;
  line: number;
  /** The key path, e.g. steps[3].expect.callsite.vfs_read */
  key: string;
}

/** What a scenario may configure of the kernel it boots. */
export type ScenarioConfig = Pick<KernelConfig, 'functions' | 'modules' | 'era' | 'callsites'> &
  Partial<Pick<KernelConfig, 'cpus' | 'preempt' | 'callBudgetMs'>> & {
    /** Seeds the scheduler of the other CPUs (config.cpus > 1). */
    seed?: number;
  };

export interface OpsDecl {
  name: string;
  callback: CallbackName;
  flags: (typeof USER_OPS_FLAGS)[number][];
  dynamic: boolean;
  /** function_graph: set_graph_function, set_graph_notrace, max_graph_depth. */
  graph: GraphSettings | undefined;
  where: Where;
}

/** `graph:` in an expect step: an explicit tree, or the static call graph below a function. */
export type GraphExpectation = { kind: 'tree'; tree: StaticNode; text: string } | { kind: 'static'; root: string };


/** A count expectation: an exact number or a comparison such as ">0" or "<=3". */
export type CountExpectation = { op: '==' | '!=' | '>' | '>=' | '<' | '<='; value: bigint };

export type TrampolineExpectation = { kind: 'none' } | { kind: 'allocated' } | { kind: 'reuses'; ops: string };

export interface Expectation {
  callsite?: Record<string, string>;
  invocations?: Record<string, CountExpectation>;
  rdx?: 'match';
  regs?: 'match';
  trampolines?: Record<string, TrampolineExpectation>;
  ftraceCall?: string;
  moduleBytes?: CountExpectation;
  /** Times a CPU hit a site the breakpoint protocol had half-written. */
  int3Hits?: CountExpectation;
  warnings?: { contains: string } | { none: true };
  graph?: GraphExpectation;
  returns?: 'match';
}

/** A call argument: a number, or `&symbol` for an address in the kernel. */
export type Arg = bigint | string;

interface StepBase {
  where: Where;
  /** For steps that call into ftrace: the error the step must end with. */
  expectError?: Errno;
}

export type Step =
  | (StepBase & { kind: 'set_filter' | 'set_notrace'; ops: string; patterns: string[]; reset: boolean })
  | (StepBase & { kind: 'register' | 'unregister' | 'destroy'; ops: string })
  | (StepBase & { kind: 'call'; function: string; times: number; args: Arg[] | undefined })
  | (StepBase & { kind: 'run'; workload: Workload; iterations: number })
  | (StepBase & { kind: 'reset_counters'; ops: string[] })
  | (StepBase & { kind: 'set_graph'; settings: GraphSettings })
  /** `at` is a kernel symbol, or `trampoline(<ops>)` (then trampolineOf names the ops): where the task is preempted. */
  | (StepBase & { kind: 'preempt'; cpu: number; at: string; trampolineOf: string | undefined; expect: 'preempted' | 'refused' })
  | (StepBase & { kind: 'corrupt'; at: string; offset: number; bytes: number[]; beforeBoot: boolean })
  | (StepBase & { kind: 'measure'; function: string; label: string; args: Arg[] | undefined })
  | (StepBase & { kind: 'expect'; expect: Expectation; only: readonly Era[] | undefined });

export interface Variant {
  name: string;
  config: Partial<ScenarioConfig>;
  /** Measurement labels that must cost fewer instructions in the scenario than in the variant. */
  fewerInstructions: string[];
}

export interface Scenario {
  name: string;
  description: string;
  file: string;
  config: ScenarioConfig;
  /** The eras the scenario describes, in ERAS order; config.era is one of them. */
  eras: readonly Era[];
  ops: OpsDecl[];
  steps: Step[];
  variant: Variant | undefined;
}
