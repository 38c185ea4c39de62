// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loads a scenario file: YAML parsed with source positions, checked against
 * the schemas, then against itself (ops that exist, counts that make sense).
 * Every error names the file, the line and the key; nothing runs from a bad
 * file. Names of kernel functions are checked later, against the booted kernel.
 */
import { readFileSync, statSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, isMap, isScalar, parseDocument, type Document } from 'yaml';
import { DEFAULT_CONFIG, ERAS, parseEra, type Era, type KernelConfig } from '../../kernel-model/kernel.js';
import { eraRules } from '../../kernel-model/ftrace/era.js';
import { COUNT_RE, LIMITS, scenarioSchema, stepSchemas, type RawArg, type RawCount, type RawOps, type RawScenario, type RawStep, type StepKind } from './schema.js';
import type { GraphSettings } from '../../kernel-model/ftrace/fgraph.js';
import { parseTree } from '../../kernel-model/trace/graph-tree.js';
import type { Arg, CountExpectation, Expectation, OpsDecl, Scenario, Step, TrampolineExpectation, Where } from './types.js';

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
const ajv = new Ajv({ allErrors: false, strict: false, verbose: true, validateSchema: false });
const validateScenario = ajv.compile<RawScenario>(scenarioSchema);
const validateStep = Object.fromEntries(Object.entries(stepSchemas).map(([k, s]) => [k, ajv.compile(s)])) as { [K in StepKind]: ValidateFunction<RawStep<K>> };

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

  node(path: Path): unknown {
    return this.doc.getIn(path, true);
  }

  fail(path: Path, reason: string): never {
    throw new ScenarioError(this.at(path), reason);
  }

  /** Validates `value` against a schema, or fails at the first error's place. */
  check<T>(validate: ValidateFunction<T>, value: unknown, base: Path): asserts value is T {
    if (validate(value)) return;
    const errs = validate.errors ?? [];
    // A union reports its branches' errors first; the union's own error is the readable one.
    const e = errs.find((x) => x.keyword === 'anyOf') ?? errs[0]!;
    const { path, reason } = ajvMessage(e);
    this.fail([...base, ...path], reason);
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
    case 'type':
      return { path, reason: `expected ${p.type === 'object' ? 'a mapping' : p.type === 'array' ? 'a list' : `a${/^[aeiou]/.test(String(p.type)) ? 'n' : ''} ${String(p.type)}`}` };
    case 'minimum':
    case 'maximum':
      return { path, reason: `expected a number ${String(p.comparison)} ${String(p.limit)}` };
    case 'minItems':
    case 'maxItems':
      return { path, reason: `expected ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${String(p.limit)} item(s)` };
    case 'minProperties':
    case 'maxProperties':
      return { path, reason: `expected ${e.keyword === 'minProperties' ? 'at least' : 'at most'} ${String(p.limit)} key(s)` };
    case 'minLength':
      return { path, reason: 'expected a non-empty string' };
    case 'anyOf':
      return { path, reason: String((e.parentSchema as { description?: string } | undefined)?.description ?? 'expected something else') };
    default:
      return { path, reason: `expected ${e.message ?? 'something else'}` };
  }
}

export function parseCount(v: RawCount): CountExpectation {
  if (typeof v === 'number') return { op: '==', value: BigInt(v) };
  const m = COUNT_RE.exec(v)!;
  return { op: (m[1] ?? '==') as CountExpectation['op'], value: BigInt(m[2]!) };
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * A call's arguments as 64-bit values. A YAML integer is read again from its
 * source text, since a JavaScript number holds only 53 bits exactly.
 */
function parseArgs(loc: Locator, path: Path, v: RawArg[] | undefined): Arg[] | undefined {
  return v?.map((a, i) => {
    if (typeof a === 'string' && a.startsWith('&')) return a;
    const node = loc.node([...path, i]);
    const text = typeof a === 'string' ? a : isScalar(node) && typeof node.source === 'string' ? node.source : String(a);
    let value: bigint;
    try {
      value = BigInt(text.replace(/_/g, ''));
    } catch {
      return loc.fail([...path, i], `'${text}' is not a whole number`);
    }
    if (value > U64_MAX || value < -(1n << 63n)) loc.fail([...path, i], `${text} does not fit in a 64-bit register`);
    return BigInt.asUintN(64, value);
  });
}

const STEP_KINDS = Object.keys(stepSchemas) as StepKind[];
const isStepKind = (k: string): k is StepKind => (STEP_KINDS as string[]).includes(k);

/** The step shorthands: `register: x` is `{ ops: x }`, `call: f` is `{ function: f }`, `run: w` is `{ workload: w }`. */
function expandShorthand(kind: StepKind, body: unknown): unknown {
  if (typeof body !== 'string') return body;
  switch (kind) {
    case 'register':
    case 'unregister':
    case 'destroy':
      return { ops: body };
    case 'call':
      return { function: body };
    case 'run':
      return { workload: body };
    default:
      return body;
  }
}

export function loadScenarioText(text: string, file: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const loc: Locator = new Locator(file, doc, lines);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ScenarioError({ file, line: lines.linePos(e.pos[0]).line, key: '' }, `YAML: ${e.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) loc.fail([], 'a scenario is a mapping with at least name and steps');
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: LIMITS.aliases });
  } catch (e) {
    // The yaml library refuses an alias bomb here (a ReferenceError).
    loc.fail([], `YAML: ${(e as Error).message} (at most ${LIMITS.aliases} aliases)`);
  }
  eraAsText(raw);
  loc.check(validateScenario, raw, []);

  const ops: OpsDecl[] = (raw.ops ?? []).map((o, i) => ({
    name: o.name,
    callback: o.callback,
    flags: o.flags ?? [],
    dynamic: o.dynamic ?? false,
    graph: graphSettings(loc, o, i),
    where: loc.at(['ops', i]),
  }));
  const opsNames = new Set<string>();
  ops.forEach((o, i) => {
    if (opsNames.has(o.name)) loc.fail(['ops', i, 'name'], `ops '${o.name}' is declared twice`);
    opsNames.add(o.name);
  });
  ops.forEach((o, i) => {
    if (o.callback === 'kprobe_regs' && !o.flags.includes('SAVE_REGS')) {
      loc.fail(['ops', i, 'flags'], 'kprobe_regs reads the pt_regs it is passed: the ops needs flags [SAVE_REGS]');
    }
  });
  /** Ops a destroy step freed, with the line that did; no later step may name them. */
  const destroyed = new Map<string, number>();
  const needOps = (path: Path, n: string) => {
    if (!opsNames.has(n)) loc.fail(path, `unknown ops '${n}' (declared: ${[...opsNames].join(', ') || 'none'})`);
    const line = destroyed.get(n);
    if (line !== undefined) loc.fail(path, `ops '${n}' was destroyed at line ${line}`);
  };

  const steps: Step[] = raw.steps.map((s, i): Step => {
    const base: Path = ['steps', i];
    const keys = Object.keys(s);
    if (keys.length !== 1) loc.fail(base, `a step has exactly one key (the step kind), not ${keys.join(', ')}`);
    const kind = keys[0]!;
    if (!isStepKind(kind)) loc.fail([...base, kind], `unknown step '${kind}', expected one of ${STEP_KINDS.join(', ')}`);
    const path: Path = [...base, kind];
    const body = expandShorthand(kind, s[kind]);
    const where = loc.at(path);
    switch (kind) {
      case 'set_filter':
      case 'set_notrace': {
        loc.check(validateStep[kind], body, path);
        needOps([...path, 'ops'], body.ops);
        return { where, expectError: body.expect_error, kind, ops: body.ops, patterns: body.patterns, reset: body.reset ?? true };
      }
      case 'register':
      case 'unregister':
      case 'destroy': {
        loc.check(validateStep[kind], body, path);
        needOps([...path, 'ops'], body.ops);
        // A destroy that is not expected to fail frees the ops for good.
        if (kind === 'destroy' && !body.expect_error) destroyed.set(body.ops, where.line);
        return { where, expectError: body.expect_error, kind, ops: body.ops };
      }
      case 'call':
        loc.check(validateStep.call, body, path);
        return { where, kind, function: body.function, times: body.times ?? 1, args: parseArgs(loc, [...path, 'args'], body.args) };
      case 'measure':
        loc.check(validateStep.measure, body, path);
        return { where, kind, function: body.function, label: body.label, args: parseArgs(loc, [...path, 'args'], body.args) };
      case 'run':
        loc.check(validateStep.run, body, path);
        return { where, kind, workload: body.workload, iterations: body.iterations ?? 1 };
      case 'reset_counters':
        loc.check(validateStep.reset_counters, body, path);
        body.forEach((n, j) => needOps([...path, j], n));
        return { where, kind, ops: body };
      case 'set_graph': {
        loc.check(validateStep.set_graph, body, path);
        const settings: GraphSettings = {};
        if (body.functions) settings.functions = body.functions;
        if (body.notrace) settings.notrace = body.notrace;
        if (body.max_depth !== undefined) settings.maxDepth = body.max_depth;
        return { where, expectError: body.expect_error, kind, settings };
      }
      case 'preempt': {
        loc.check(validateStep.preempt, body, path);
        const cfg = (raw.config ?? {}) as { cpus?: number; preempt?: boolean };
        if (!cfg.preempt) loc.fail(path, 'a preempt step needs config.preempt: true');
        const trampolineOf = trampolineRef(body.at);
        if (trampolineOf) needOps([...path, 'at'], trampolineOf);
        if (body.cpu >= (cfg.cpus ?? 1)) loc.fail([...path, 'cpu'], `there is no CPU ${body.cpu}: config.cpus is ${cfg.cpus ?? 1}`);
        return { where, kind, cpu: body.cpu, at: body.at, trampolineOf, expect: body.expect };
      }
      case 'corrupt':
        loc.check(validateStep.corrupt, body, path);
        if (body.when === 'before_boot' && i > 0 && !(raw.steps[i - 1]!['corrupt'] as { when?: string } | undefined)?.when) {
          loc.fail([...path, 'when'], 'a corrupt step with when: before_boot comes before every other step');
        }
        return { where, kind, at: body.at, offset: body.offset ?? 0, bytes: body.bytes, beforeBoot: body.when === 'before_boot' };
      case 'expect':
        loc.check(validateStep.expect, body, path);
        return { where, kind, expect: parseExpect(loc, path, body, needOps), only: body.only ? erasOf(loc, [...path, 'only'], body.only) : undefined };
    }
  });

  let variant: Scenario['variant'];
  if (raw.variant) {
    const v = raw.variant;
    variant = { name: v.name, config: withEra(v.config), fewerInstructions: v.fewer_instructions ?? [] };
    const labels = new Set(steps.flatMap((s) => (s.kind === 'measure' ? [s.label] : [])));
    variant.fewerInstructions.forEach((l, i) => {
      if (!labels.has(l)) loc.fail(['variant', 'fewer_instructions', i], `no measure step has the label '${l}'`);
    });
  }

  const eras = raw.eras ? erasOf(loc, ['eras'], raw.eras) : ERAS;
  const config = scenarioConfig(raw.config, eras);
  if (!eras.includes(config.era)) loc.fail(['config', 'era'], `era ${config.era} is not one of the scenario's eras (${eras.join(', ')})`);
  if (config.callsites === 'mcount' && !eraRules(config.era).mcount) loc.fail(['config', 'callsites'], `a ${eraRules(config.era).version} x86-64 kernel has fentry call sites only`);
  steps.forEach((s, i) => {
    const stray = s.kind === 'expect' ? s.only?.find((e) => !eras.includes(e)) : undefined;
    if (stray) loc.fail(['steps', i, 'expect', 'only'], `era ${stray} is not one of the scenario's eras (${eras.join(', ')})`);
  });
  // An ops flag an era's kernel does not have is bad input, not a no-op.
  // The era a plain run boots first, so the message names the kernel the author had in mind.
  const booted = [config.era, ...eras, ...(variant?.config.era ? [variant.config.era] : [])];
  ops.forEach((o, i) => {
    const j = o.flags.indexOf('IPMODIFY');
    const without = booted.find((e) => !eraRules(e).ipmodify);
    if (j >= 0 && without) loc.fail(['ops', i, 'flags', j], `FTRACE_OPS_FL_IPMODIFY does not exist in ${eraRules(without).version} (it came in v3.19): give the scenario eras: [3.19, modern]`);
  });
  return {
    name: raw.name,
    description: raw.description ?? '',
    file,
    config,
    eras,
    ops,
    steps,
    variant,
  };
}

/** The era a plain run boots: the default kernel if the scenario describes it, else its first era. */
function scenarioConfig(c: RawScenario['config'], eras: readonly Era[]): Scenario['config'] {
  const { functions, modules, callsites } = DEFAULT_CONFIG;
  const era = eras.includes(DEFAULT_CONFIG.era) ? DEFAULT_CONFIG.era : eras[0]!;
  const { budget_ms, ...rest } = c ?? {};
  return { functions, modules, era, callsites, ...withEra(rest), ...(budget_ms !== undefined ? { callBudgetMs: budget_ms } : {}) };
}

/** A list of eras, aliases resolved, in ERAS order; naming one twice is a mistake. */
function erasOf(loc: Locator, path: Path, names: readonly string[]): Era[] {
  const eras = names.map((n) => parseEra(n)!);
  const twice = eras.findIndex((e, i) => eras.indexOf(e) !== i);
  if (twice >= 0) loc.fail([...path, twice], `era ${eras[twice]} is listed twice`);
  return ERAS.filter((e) => eras.includes(e));
}

/** `era: 3.18` is a YAML number: read it as the era's name (in lists of eras too). */
function eraAsText(raw: unknown): void {
  const text = (v: unknown) => (typeof v === 'number' ? String(v) : v);
  const texts = (l: unknown) => (Array.isArray(l) ? l.map(text) : l);
  const r = raw as { config?: { era?: unknown }; eras?: unknown; variant?: { config?: { era?: unknown } }; steps?: unknown } | null;
  if (!r || typeof r !== 'object') return;
  for (const c of [r.config, r.variant?.config]) {
    if (c && typeof c === 'object' && 'era' in c) c.era = text(c.era);
  }
  if ('eras' in r) r.eras = texts(r.eras);
  if (!Array.isArray(r.steps)) return;
  for (const s of r.steps as unknown[]) {
    const e = (s as { expect?: { only?: unknown } } | null)?.expect;
    if (e && typeof e === 'object' && 'only' in e) e.only = texts(e.only);
  }
}

/** A config with its era's alias (such as 'seed') resolved; the schema admits only known names. */
function withEra<T extends { era?: string }>(c: T): Omit<T, 'era'> & Partial<Pick<KernelConfig, 'era'>> {
  const { era, ...rest } = c;
  return era === undefined ? rest : { ...rest, era: parseEra(era)! };
}

/** The ops a `trampoline(<ops>)` label names, or undefined for any other label. */
function trampolineRef(label: string): string | undefined {
  return /^trampoline\((.+)\)$/.exec(label)?.[1];
}

function parseExpect(loc: Locator, base: Path, b: RawStep<'expect'>, needOps: (p: Path, n: string) => void): Expectation {
  const e: Expectation = {};
  if (b.callsite) {
    e.callsite = b.callsite;
    for (const [fn, v] of Object.entries(e.callsite)) {
      const ops = trampolineRef(v);
      if (ops) needOps([...base, 'callsite', fn], ops);
    }
  }
  if (b.invocations) {
    e.invocations = {};
    for (const [n, v] of Object.entries(b.invocations)) {
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
    for (const [n, v] of Object.entries(b.trampolines)) {
      needOps([...base, 'trampolines', n], n);
      const m = /^reuses\((.+)\)$/.exec(v);
      let t: TrampolineExpectation;
      if (m) {
        needOps([...base, 'trampolines', n], m[1]!);
        if (m[1] === n) loc.fail([...base, 'trampolines', n], `an ops cannot reuse its own trampoline`);
        t = { kind: 'reuses', ops: m[1]! };
      } else t = { kind: v === 'none' ? 'none' : 'allocated' };
      e.trampolines[n] = t;
    }
  }
  if (b.ftrace_call !== undefined) e.ftraceCall = b.ftrace_call;
  if (b.module_bytes !== undefined) e.moduleBytes = parseCount(b.module_bytes);
  if (b.int3_hits !== undefined) e.int3Hits = parseCount(b.int3_hits);
  if (b.warnings !== undefined) e.warnings = b.warnings === 'none' ? { none: true } : { contains: b.warnings };
  if (b.graph !== undefined) {
    const st = /^\s*static\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)\s*$/.exec(b.graph);
    if (st) e.graph = { kind: 'static', root: st[1]! };
    else {
      try {
        e.graph = { kind: 'tree', tree: parseTree(b.graph), text: b.graph };
      } catch (err) {
        loc.fail([...base, 'graph'], (err as Error).message);
      }
    }
  }
  if (b.returns) e.returns = 'match';
  return e;
}

/** The graph settings of an ops; only a function_graph ops may have them. */
function graphSettings(loc: Locator, o: RawOps, i: number): GraphSettings | undefined {
  const any = o.graph_functions !== undefined || o.graph_notrace !== undefined || o.max_depth !== undefined;
  if (o.callback !== 'function_graph') {
    if (any) loc.fail(['ops', i, o.graph_functions ? 'graph_functions' : o.graph_notrace ? 'graph_notrace' : 'max_depth'], 'only an ops with callback function_graph has graph settings');
    return undefined;
  }
  const g: GraphSettings = {};
  if (o.graph_functions) g.functions = o.graph_functions;
  if (o.graph_notrace) g.notrace = o.graph_notrace;
  if (o.max_depth !== undefined) g.maxDepth = o.max_depth;
  return g;
}

export function loadScenarioFile(path: string, displayName = path, maxBytes: number = LIMITS.fileBytes): Scenario {
  const where: Where = { file: displayName, line: 1, key: '' };
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > maxBytes) throw new ScenarioError(where, `the file is ${size} bytes; scenario files are limited to ${maxBytes} (--max-file-size raises it)`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    throw new ScenarioError(where, `cannot read: ${(e as Error).message}`);
  }
  return loadScenarioText(text, displayName);
}
