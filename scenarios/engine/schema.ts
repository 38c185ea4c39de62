// SPDX-License-Identifier: GPL-2.0-or-later
/* JSON Schemas of a scenario file: the document, and the body of each kind of step. */
import { CALLBACK_KIND } from '../../kernel-model/abi.js';
import { ERRNO } from '../../kernel-model/ftrace/core.js';
import { WORKLOADS, type StepKind } from './types.js';

const name = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$' };
const count = { oneOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\s*(==|!=|>=|<=|>|<)?\\s*\\d+\\s*$' }] };
const arg = { oneOf: [{ type: 'integer' }, { type: 'string', pattern: '^(0x[0-9a-fA-F]+|\\d+|&[A-Za-z_][A-Za-z0-9_]*)$' }] };
const expectError = { enum: Object.keys(ERRNO) };

export const scenarioSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'steps'],
  properties: {
    name,
    description: { type: 'string' },
    config: {
      type: 'object',
      additionalProperties: false,
      properties: {
        functions: { type: 'integer', minimum: 0, maximum: 200000 },
        modules: { type: 'boolean' },
        trampolines: { type: 'boolean' },
        era: { enum: ['seed', 'modern'] },
      },
    },
    ops: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'callback'],
        properties: {
          name,
          callback: { enum: Object.keys(CALLBACK_KIND) },
          flags: { type: 'array', items: { enum: ['SAVE_REGS', 'SAVE_REGS_IF_SUPPORTED', 'RECURSION_SAFE', 'IPMODIFY'] } },
          dynamic: { type: 'boolean' },
        },
      },
    },
    steps: {
      type: 'array',
      minItems: 1,
      items: { type: 'object', minProperties: 1 },
    },
    variant: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'config'],
      properties: {
        name,
        config: {
          type: 'object',
          additionalProperties: false,
          properties: { modules: { type: 'boolean' }, trampolines: { type: 'boolean' }, era: { enum: ['seed', 'modern'] } },
        },
        fewer_instructions: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

const opsRef = { type: 'string', minLength: 1 };

/** The body of each step kind; a string body is shorthand for `{ ops: <string> }` where noted. */
export const stepSchemas: Record<StepKind, object> = {
  set_filter: {
    type: 'object',
    additionalProperties: false,
    required: ['ops', 'patterns'],
    properties: { ops: opsRef, patterns: { type: 'array', items: { type: 'string', minLength: 1 } }, reset: { type: 'boolean' }, expect_error: expectError },
  },
  set_notrace: {
    type: 'object',
    additionalProperties: false,
    required: ['ops', 'patterns'],
    properties: { ops: opsRef, patterns: { type: 'array', items: { type: 'string', minLength: 1 } }, reset: { type: 'boolean' }, expect_error: expectError },
  },
  register: { type: 'object', additionalProperties: false, required: ['ops'], properties: { ops: opsRef, expect_error: expectError } },
  unregister: { type: 'object', additionalProperties: false, required: ['ops'], properties: { ops: opsRef, expect_error: expectError } },
  destroy: { type: 'object', additionalProperties: false, required: ['ops'], properties: { ops: opsRef, expect_error: expectError } },
  call: {
    type: 'object',
    additionalProperties: false,
    required: ['function'],
    properties: { function: { type: 'string' }, times: { type: 'integer', minimum: 1, maximum: 1000000 }, args: { type: 'array', maxItems: 6, items: arg } },
  },
  run: {
    type: 'object',
    additionalProperties: false,
    required: ['workload'],
    properties: { workload: { enum: [...WORKLOADS] }, iterations: { type: 'integer', minimum: 1, maximum: 10000000 } },
  },
  reset_counters: { type: 'array', items: { type: 'string' } },
  corrupt: {
    type: 'object',
    additionalProperties: false,
    required: ['at', 'bytes'],
    properties: {
      at: { type: 'string' },
      offset: { type: 'integer', minimum: 0 },
      bytes: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0, maximum: 255 } },
    },
  },
  measure: {
    type: 'object',
    additionalProperties: false,
    required: ['function', 'label'],
    properties: { function: { type: 'string' }, label: { type: 'string', minLength: 1 }, args: { type: 'array', maxItems: 6, items: arg } },
  },
  expect: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      callsite: { type: 'object', additionalProperties: { type: 'string', pattern: '^(nop|ftrace_caller|ftrace_regs_caller|trampoline\\([^)]+\\))$' } },
      invocations: { type: 'object', additionalProperties: count },
      rdx: { const: 'match' },
      regs: { const: 'match' },
      trampolines: { type: 'object', additionalProperties: { type: 'string', pattern: '^(none|allocated|reuses\\([^)]+\\))$' } },
      ftrace_call: { type: 'string' },
      module_bytes: count,
      warnings: { type: 'string' },
    },
  },
};
