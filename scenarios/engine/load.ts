// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loads a scenario file: YAML parsed with source positions, checked against
 * the schemas, then against itself (ops that exist, counts that make sense).
 * Every error names the file, the line and the key; nothing runs from a bad
 * file. Names of kernel functions are checked later, against the booted kernel.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, parseDocument, type Document } from 'yaml';
import type { CallbackName, OpsFlagName } from '../../kernel-model/abi.js';
import type { Errno } from '../../kernel-model/ftrace/core.js';
import { scenarioSchema, stepSchemas } from './schema.js';
import type { Arg, CountExpectation, Expectation, OpsDecl, Scenario, Step, StepKind, TrampolineExpectation, Where, Workload } from './types.js';

export class ScenarioError extends Error {
  constructor(
    readonly where: Where,
    readonly reason: string,
  ) {
    super(`${where.file}:${where.line}: ${where.key ? `${where.key}: ` : ''}${reason}`);
    this.name = 'ScenarioError';
  }
}

type Path = (string | number)[];

// The schemas are ours and fixed: checking them against JSON Schema's meta-schema would
// compile the meta-schema on every start (about half of `run --all`'s start-up).
const ajv = new Ajv({ allErrors: false, strict: false, validateSchema: false });
const validateScenario = ajv.compile(scenarioSchema);
const validateStep = Object.fromEntries(Object.entries(stepSchemas).map(([k, s]) => [k, ajv.compile(s)])) as Record<StepKind, ReturnType<typeof ajv.compile>>;

function keyOf(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

class Locator {
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The line of the node at `path`, or of its nearest ancestor that exists. */
  at(path: Path): Where {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) return { file: this.file, line: this.lines.linePos(range[0]).line, key: keyOf(path) };
    }
    return { file: this.file, line: 1, key: keyOf(path) };
  }

  fail(path: Path, reason: string): never {
    throw new ScenarioError(this.at(path), reason);
  }
}

function ajvMessage(e: ErrorObject): { path: Path; reason: string } {
  const path: Path = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: [...path, String(p.additionalProperty)], reason: `unknown key '${String(p.additionalProperty)}'` };
    case 'required':
      return { path, reason: `missing key '${String(p.missingProperty)}'` };
    case 'enum':
      return { path, reason: `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path, reason: `expected ${JSON.stringify(p.allowedValue)}` };
    case 'pattern':
      return { path, reason: `does not have the expected form (${String(p.pattern)})` };
    case 'oneOf':
      return { path, reason: 'expected a number or a comparison such as ">0" or "<=3"' };
    default:
      return { path, reason: `expected ${e.message ?? 'something else'}` };
  }
}

function check(loc: Locator, validate: ReturnType<typeof ajv.compile>, value: unknown, base: Path): void {
  if (validate(value)) return;
  const errs = validate.errors ?? [];
  // oneOf reports its branches' errors first; the oneOf error itself is the readable one.
  const e = errs.find((x: ErrorObject) => x.keyword === 'oneOf') ?? errs[0]!;
  const { path, reason } = ajvMessage(e);
  loc.fail([...base, ...path], reason);
}

export function parseCount(v: number | string): CountExpectation {
  if (typeof v === 'number') return { op: '==', value: BigInt(v) };
  const m = /^\s*(==|!=|>=|<=|>|<)?\s*(\d+)\s*$/.exec(v)!;
  return { op: (m[1] ?? '==') as CountExpectation['op'], value: BigInt(m[2]!) };
}

function parseArg(v: number | string): bigint | string {
  if (typeof v === 'number') return BigInt(v);
  return v.startsWith('&') ? v : BigInt(v);
}

const STEP_KINDS = Object.keys(stepSchemas) as StepKind[];
const OPS_SHORTHAND: StepKind[] = ['register', 'unregister', 'destroy'];

export function loadScenarioText(text: string, file: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const loc = new Locator(file, doc, lines);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ScenarioError({ file, line: lines.linePos(e.pos[0]).line, key: '' }, `YAML: ${e.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) loc.fail([], 'a scenario is a mapping with at least name and steps');
  const raw = doc.toJS() as Record<string, unknown>;
  check(loc, validateScenario, raw, []);

  const ops: OpsDecl[] = ((raw.ops ?? []) as Record<string, unknown>[]).map((o, i) => ({
    name: o.name as string,
    callback: o.callback as CallbackName,
    flags: (o.flags ?? []) as OpsFlagName[],
    dynamic: (o.dynamic ?? false) as boolean,
    where: loc.at(['ops', i]),
  }));
  const opsNames = new Set<string>();
  ops.forEach((o, i) => {
    if (opsNames.has(o.name)) loc.fail(['ops', i, 'name'], `ops '${o.name}' is declared twice`);
    opsNames.add(o.name);
  });
  const needOps = (path: Path, n: string) => {
    if (!opsNames.has(n)) loc.fail(path, `unknown ops '${n}' (declared: ${[...opsNames].join(', ') || 'none'})`);
  };

  const steps: Step[] = (raw.steps as Record<string, unknown>[]).map((s, i) => {
    const base: Path = ['steps', i];
    const keys = Object.keys(s);
    if (keys.length !== 1) loc.fail(base, `a step has exactly one key (the step kind), not ${keys.join(', ')}`);
    const kind = keys[0] as StepKind;
    if (!STEP_KINDS.includes(kind)) loc.fail([...base, kind], `unknown step '${kind}', expected one of ${STEP_KINDS.join(', ')}`);
    let body = s[kind];
    if (OPS_SHORTHAND.includes(kind) && typeof body === 'string') body = { ops: body };
    if (kind === 'call' && typeof body === 'string') body = { function: body };
    if (kind === 'run' && typeof body === 'string') body = { workload: body };
    check(loc, validateStep[kind], body, [...base, kind]);
    const b = body as Record<string, unknown>;
    const where = loc.at([...base, kind]);
    const expectError = b.expect_error as Errno | undefined;
    const common = { where, ...(expectError ? { expectError } : {}) };
    switch (kind) {
      case 'set_filter':
      case 'set_notrace':
        needOps([...base, kind, 'ops'], b.ops as string);
        return { ...common, kind, ops: b.ops as string, patterns: b.patterns as string[], reset: (b.reset ?? true) as boolean };
      case 'register':
      case 'unregister':
      case 'destroy':
        needOps([...base, kind, 'ops'], b.ops as string);
        return { ...common, kind, ops: b.ops as string };
      case 'call':
        return { ...common, kind, function: b.function as string, times: (b.times ?? 1) as number, args: parseArgs(b.args) };
      case 'measure':
        return { ...common, kind, function: b.function as string, label: b.label as string, args: parseArgs(b.args) };
      case 'run':
        return { ...common, kind, workload: b.workload as Workload, iterations: (b.iterations ?? 1) as number };
      case 'reset_counters':
        (body as string[]).forEach((n, j) => needOps([...base, kind, j], n));
        return { ...common, kind, ops: body as string[] };
      case 'corrupt':
        return { ...common, kind, at: b.at as string, offset: (b.offset ?? 0) as number, bytes: b.bytes as number[] };
      case 'expect':
        return { ...common, kind, expect: parseExpect(loc, [...base, kind], b, needOps) };
    }
  });

  let variant: Scenario['variant'];
  if (raw.variant) {
    const v = raw.variant as Record<string, unknown>;
    variant = { name: v.name as string, config: v.config as Partial<Scenario['config']>, fewerInstructions: (v.fewer_instructions ?? []) as string[] };
    const labels = new Set(steps.flatMap((s) => (s.kind === 'measure' ? [s.label] : [])));
    variant.fewerInstructions.forEach((l, i) => {
      if (!labels.has(l)) loc.fail(['variant', 'fewer_instructions', i], `no measure step has the label '${l}'`);
    });
  }

  const cfg = (raw.config ?? {}) as Record<string, unknown>;
  return {
    name: raw.name as string,
    description: (raw.description ?? '') as string,
    file,
    config: {
      functions: (cfg.functions ?? 200) as number,
      modules: (cfg.modules ?? true) as boolean,
      trampolines: (cfg.trampolines ?? true) as boolean,
      era: (cfg.era ?? 'seed') as 'seed' | 'modern',
    },
    ops,
    steps,
    variant,
  };
}

function parseArgs(v: unknown): Arg[] | undefined {
  if (v === undefined) return undefined;
  return (v as (number | string)[]).map(parseArg);
}

function parseExpect(loc: Locator, base: Path, b: Record<string, unknown>, needOps: (p: Path, n: string) => void): Expectation {
  const e: Expectation = {};
  if (b.callsite) {
    e.callsite = b.callsite as Record<string, string>;
    for (const [fn, v] of Object.entries(e.callsite)) {
      const m = /^trampoline\((.+)\)$/.exec(v);
      if (m) needOps([...base, 'callsite', fn], m[1]!);
    }
  }
  if (b.invocations) {
    e.invocations = {};
    for (const [n, v] of Object.entries(b.invocations as Record<string, number | string>)) {
      needOps([...base, 'invocations', n], n);
      e.invocations[n] = parseCount(v);
    }
    const contradictions = Object.entries(e.invocations).filter(([, c]) => c.op === '<' && c.value === 0n);
    if (contradictions.length) loc.fail([...base, 'invocations', contradictions[0]![0]], 'a count can never be below 0');
  }
  if (b.rdx) e.rdx = 'match';
  if (b.regs) e.regs = 'match';
  if (b.trampolines) {
    e.trampolines = {};
    for (const [n, v] of Object.entries(b.trampolines as Record<string, string>)) {
      needOps([...base, 'trampolines', n], n);
      const m = /^reuses\((.+)\)$/.exec(v);
      let t: TrampolineExpectation;
      if (m) {
        needOps([...base, 'trampolines', n], m[1]!);
        if (m[1] === n) loc.fail([...base, 'trampolines', n], `an ops cannot reuse its own trampoline`);
        t = { kind: 'reuses', ops: m[1]! };
      } else t = { kind: v as 'none' | 'allocated' };
      e.trampolines[n] = t;
    }
  }
  if (b.ftrace_call !== undefined) e.ftraceCall = b.ftrace_call as string;
  if (b.module_bytes !== undefined) e.moduleBytes = parseCount(b.module_bytes as number | string);
  if (b.warnings !== undefined) e.warnings = b.warnings === 'none' ? { none: true } : { contains: b.warnings as string };
  return e;
}

export function loadScenarioFile(path: string, displayName = path): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError({ file: displayName, line: 0, key: '' }, `cannot read: ${(e as Error).message}`);
  }
  return loadScenarioText(text, displayName);
}

