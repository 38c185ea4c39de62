// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The shape of a scenario file, written once: each schema below is both the
 * JSON Schema the loader validates with and, through Static<>, the type of
 * what it accepted. Names, limits and defaults come from where the kernel
 * model defines them.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { CALLBACK_KIND, USER_OPS_FLAGS } from '../../kernel-model/abi.js';
import { RETURNED_ERRNOS } from '../../kernel-model/ftrace/core.js';
import { CALL_SITES, ERAS, ERA_ALIASES, MAX_CPUS, MAX_FUNCTIONS } from '../../kernel-model/kernel.js';
import { WORKLOAD_NAMES } from '../../kernel-model/workloads/workloads.js';
import { LIMITS } from './limits.js';

export { LIMITS } from './limits.js';

/** A string from a fixed list; validated as `enum`, so an error can list the choices. */
function oneOf<T extends string>(values: readonly T[]) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values] });
}

/** A union whose error message is its description rather than one per branch. */
function either<T extends TSchema[]>(schemas: [...T], description: string) {
  return Type.Union(schemas, { description });
}

const Name = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$' });
const OpsRef = Type.String({ minLength: 1 });
export const COUNT_RE = /^\s*(==|!=|>=|<=|>|<)?\s*(\d+)\s*$/;
const Count = either([Type.Integer({ minimum: 0 }), Type.String({ pattern: COUNT_RE.source })], 'expected a number or a comparison such as ">0" or "<=3"');
const Arg = either(
  [Type.Integer(), Type.String({ pattern: '^(0x[0-9a-fA-F]+|\\d+|&[A-Za-z_][A-Za-z0-9_]*)$' })],
  'expected a whole number, a 0x… number or &symbol',
);
// Only the errors the model's ftrace can return: ENOENT (removing an ip a
// hash lacks) and ENOMEM are not among them, so expecting one is bad input.
const ExpectError = Type.Optional(oneOf(RETURNED_ERRNOS));
const Era = oneOf([...ERAS, ...Object.keys(ERA_ALIASES)]);
const Eras = Type.Array(Era, { minItems: 1, maxItems: 16 });
const Patterns = Type.Array(Type.String({ minLength: 1 }), { maxItems: LIMITS.patterns });
const Args = Type.Optional(Type.Array(Arg, { maxItems: LIMITS.args }));
const closed = { additionalProperties: false } as const;
const entries = { maxProperties: LIMITS.expectEntries } as const;

const ConfigSchema = Type.Object(
  {
    functions: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_FUNCTIONS })),
    modules: Type.Optional(Type.Boolean()),
    /** The era a plain `run` boots; `run --era` and `compare` choose among the scenario's eras. */
    era: Type.Optional(Era),
    /** -pg -mfentry (fentry) or -pg alone (mcount, v3.x only); `run --callsites` overrides it. */
    callsites: Type.Optional(oneOf(CALL_SITES)),
    budget_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.budgetMs })),
    /** CPUs 1.. run workloads while the steps run on CPU 0. */
    cpus: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CPUS })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff })),
    /** CONFIG_PREEMPT: a task may be preempted anywhere preemption is not disabled. */
    preempt: Type.Optional(Type.Boolean()),
  },
  closed,
);

const OpsSchema = Type.Object(
  {
    name: Name,
    callback: oneOf(Object.keys(CALLBACK_KIND) as (keyof typeof CALLBACK_KIND)[]),
    flags: Type.Optional(Type.Array(oneOf(USER_OPS_FLAGS))),
    dynamic: Type.Optional(Type.Boolean()),
    /** function_graph only: set_graph_function, set_graph_notrace, max_graph_depth. */
    graph_functions: Type.Optional(Patterns),
    graph_notrace: Type.Optional(Patterns),
    max_depth: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  },
  closed,
);

export const scenarioSchema = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.String()),
    config: Type.Optional(ConfigSchema),
    /** The kernels the scenario describes (all of them when absent). */
    eras: Type.Optional(Eras),
    ops: Type.Optional(Type.Array(OpsSchema, { maxItems: LIMITS.ops })),
    steps: Type.Array(Type.Record(Type.String(), Type.Unknown(), { minProperties: 1 }), { minItems: 1, maxItems: LIMITS.steps }),
    variant: Type.Optional(
      Type.Object(
        {
          name: Name,
          config: Type.Object({ modules: Type.Optional(Type.Boolean()), era: Type.Optional(Era) }, closed),
          fewer_instructions: Type.Optional(Type.Array(Type.String())),
        },
        closed,
      ),
    ),
  },
  closed,
);
export type RawScenario = Static<typeof scenarioSchema>;
export type RawOps = Static<typeof OpsSchema>;

const opsStep = Type.Object({ ops: OpsRef, expect_error: ExpectError }, closed);
const hashStep = Type.Object({ ops: OpsRef, patterns: Patterns, reset: Type.Optional(Type.Boolean()), expect_error: ExpectError }, closed);

/** The body of each kind of step (after the shorthands: `register: x` is `{ ops: x }`). */
export const stepSchemas = {
  set_filter: hashStep,
  set_notrace: hashStep,
  register: opsStep,
  unregister: opsStep,
  destroy: opsStep,
  call: Type.Object({ function: Type.String(), times: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.times })), args: Args }, closed),
  run: Type.Object({ workload: oneOf(WORKLOAD_NAMES), iterations: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.iterations })) }, closed),
  reset_counters: Type.Array(Type.String(), { maxItems: LIMITS.ops }),
  /** Writes the graph tracer's files: set_graph_function, set_graph_notrace, max_graph_depth. */
  set_graph: Type.Object(
    { functions: Type.Optional(Patterns), notrace: Type.Optional(Patterns), max_depth: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })), expect_error: ExpectError },
    { ...closed, minProperties: 1 },
  ),
  corrupt: Type.Object(
    {
      at: Type.String(),
      offset: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.corruptOffset })),
      bytes: Type.Array(Type.Integer({ minimum: 0, maximum: 255 }), { minItems: 1, maxItems: LIMITS.corruptBytes }),
      /** before_boot: written before ftrace_init() converts the call sites. */
      when: Type.Optional(Type.Literal('before_boot')),
    },
    closed,
  ),
  preempt: Type.Object(
    {
      cpu: Type.Integer({ minimum: 1, maximum: MAX_CPUS - 1 }),
      at: Type.String(),
      /** Whether the timer interrupt switches tasks there (it does not while preemption is disabled). */
      expect: oneOf(['preempted', 'refused'] as const),
    },
    closed,
  ),
  measure: Type.Object({ function: Type.String(), label: Type.String({ minLength: 1 }), args: Args }, closed),
  expect: Type.Object(
    {
      callsite: Type.Optional(Type.Record(Type.String(), Type.String({ pattern: '^(nop|__fentry__|mcount|ftrace_caller|ftrace_regs_caller|trampoline\\([^)]+\\))$' }), entries)),
      invocations: Type.Optional(Type.Record(Type.String(), Count, entries)),
      rdx: Type.Optional(Type.Literal('match')),
      regs: Type.Optional(Type.Literal('match')),
      trampolines: Type.Optional(Type.Record(Type.String(), Type.String({ pattern: '^(none|allocated|reuses\\([^)]+\\))$' }), entries)),
      ftrace_call: Type.Optional(Type.String()),
      module_bytes: Type.Optional(Count),
      int3_hits: Type.Optional(Count),
      warnings: Type.Optional(Type.String()),
      /** The last call tree of a function, `f > [a, b > [c]]`, or `static(f)`: the model kernel's static call graph below f. */
      graph: Type.Optional(Type.String({ minLength: 1 })),
      returns: Type.Optional(Type.Literal('match')),
      /** The eras whose kernel these checks describe; elsewhere the step checks nothing. */
      only: Type.Optional(Eras),
    },
    { ...closed, minProperties: 1 },
  ),
};
export type StepKind = keyof typeof stepSchemas;
export type RawStep<K extends StepKind> = Static<(typeof stepSchemas)[K]>;
export type RawCount = Static<typeof Count>;
export type RawArg = Static<typeof Arg>;
