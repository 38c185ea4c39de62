// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The teaching page's server: serves the bundled page and a small JSON API
 * over the simulator. It reads files only at start (the page's own assets
 * and the built-in scenarios, into memory): no request path is ever joined
 * to a file name. Uploads are size-limited, parsed by the scenario loader and
 * kept in memory; simulator runs go one at a time.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { hex } from '../emu/index.js';
import { packageRoot } from '../emu/package-root.js';
import { builtinScenarioFiles } from '../scenarios/engine/catalog.js';
import { ScenarioError, loadScenarioText } from '../scenarios/engine/load.js';
import { inspectScenario, runScenario, type ScenarioResult } from '../scenarios/engine/run.js';
import type { Scenario, ScenarioConfig } from '../scenarios/engine/types.js';
import { scenarioFunctions, stepSnapshot, type StepSnapshot } from './snapshot.js';

export const MAX_UPLOAD_BYTES = 64 * 1024;
/** An uploaded kernel is assembled and booted for every step shown: keep it to a lecture's size. */
export const MAX_UPLOAD_FUNCTIONS = 5000;
const MAX_UPLOADS = 32;
const MAX_CACHED = 256;
// The page's files stay in web/static whether this module runs from source or from dist/.
const STATIC_DIR = join(packageRoot(import.meta.url), 'web', 'static');
const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

interface Entry {
  key: string;
  text: string;
  scenario: Scenario;
  builtin: boolean;
}

export interface StepInfo {
  index: number;
  kind: string;
  line: number;
  /** The last line of the step in the file (the line before the next step, or of the steps). */
  endLine: number;
}

export interface Comparison {
  label: string;
  config: Partial<ScenarioConfig>;
  stepsRun: number;
  target: string;
  site: string;
  hops: StepSnapshot['hops'];
  callbacks: StepSnapshot['explanation']['callbacks'];
  instructions: number;
  fault: string | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** JSON with bigints as hex addresses, as the CLI's --json prints them. */
function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? hex(v) : v));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function scenarioError(e: ScenarioError): HttpError {
  return new HttpError(400, e.message, { file: e.where.file, line: e.where.line, key: e.where.key, reason: e.reason });
}

/** Lines of each step in the YAML text: from its own line to the line before the next. */
function stepLines(s: Scenario, text: string): StepInfo[] {
  const lines = text.split('\n');
  const starts = s.steps.map((st) => st.where.line);
  // The steps end where the next top-level key begins.
  let stepsEnd = lines.length;
  const first = starts[0] ?? 1;
  for (let i = first; i < lines.length; i++) {
    if (/^[A-Za-z_]/.test(lines[i]!)) {
      stepsEnd = i;
      break;
    }
  }
  // The loader's line is the step's body (after any comments); the step itself starts at its `- `.
  const begins: number[] = [];
  starts.forEach((line, i) => {
    let b = line;
    const floor = i > 0 ? starts[i - 1]! : 1;
    while (b > floor && !/^\s*-\s/.test(lines[b - 1]!)) b--;
    begins.push(/^\s*-\s/.test(lines[b - 1]!) ? b : line);
  });
  return s.steps.map((st, i) => {
    let end = i + 1 < begins.length ? begins[i + 1]! - 1 : stepsEnd;
    while (end > begins[i]! && !lines[end - 1]!.trim()) end--;
    return { index: i, kind: st.kind, line: begins[i]!, endLine: Math.max(end, st.where.line) };
  });
}

export class WebApp {
  private readonly assets = new Map<string, { type: string; body: Buffer }>();
  private readonly scenarios = new Map<string, Entry>();
  private readonly cache = new Map<string, Promise<unknown>>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor() {
    for (const [path, { file, type }] of Object.entries(STATIC_FILES)) this.assets.set(path, { type, body: readFileSync(join(STATIC_DIR, file)) });
    for (const f of builtinScenarioFiles()) {
      const text = readFileSync(f, 'utf8');
      const key = basename(f).replace(/\.ya?ml$/, '');
      this.scenarios.set(key, { key, text, scenario: loadScenarioText(text, `scenarios/${basename(f)}`), builtin: true });
    }
  }

  /** Simulator work, one job at a time: runs share nothing, but the CPU is small. */
  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const p = this.queue.then(job, job);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private cached<T>(key: string, job: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    if (hit) return hit as Promise<T>;
    const p = this.exclusive(job);
    this.cache.set(key, p);
    p.catch(() => this.cache.delete(key));
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    return p;
  }

  private entry(key: string | null): Entry {
    const e = key !== null ? this.scenarios.get(key) : undefined;
    if (!e) throw new HttpError(404, `no scenario '${key ?? ''}'`);
    return e;
  }

  private step(e: Entry, v: string | null): number {
    if (v === null || !/^\d{1,4}$/.test(v) || Number(v) >= e.scenario.steps.length) {
      throw new HttpError(400, `step must be from 0 to ${e.scenario.steps.length - 1}`);
    }
    return Number(v);
  }

  private fn(v: string | null): string | undefined {
    if (v === null || v === '') return undefined;
    if (!/^[A-Za-z_][A-Za-z0-9_.]{0,127}$/.test(v)) throw new HttpError(400, `not a function name: '${v.slice(0, 40)}'`);
    return v;
  }

  /** The first step after which some ops has a trampoline (the page opens there), or 0. */
  private openStep(e: Entry): Promise<number> {
    return this.cached(`open|${e.key}`, async () => {
      for (let i = 0; i < e.scenario.steps.length; i++) {
        let has = false;
        await inspectScenario(e.scenario, i, ({ ops }) => {
          has = [...ops.values()].some((o) => o.trampoline !== 0n);
        });
        if (has) return i;
      }
      return 0;
    });
  }

  private async describe(e: Entry): Promise<Record<string, unknown>> {
    const s = e.scenario;
    return {
      key: e.key,
      name: s.name,
      file: s.file,
      builtin: e.builtin,
      description: s.description,
      config: s.config,
      variant: s.variant ?? null,
      text: e.text,
      steps: stepLines(s, e.text),
      functions: scenarioFunctions(s),
      openStep: await this.openStep(e),
    };
  }

  private compare(e: Entry, step: number, fn: string | undefined): Promise<Comparison[]> {
    const s = e.scenario;
    const configs: { label: string; config: Partial<ScenarioConfig> }[] = [];
    // Every kernel the scenario describes, in the order they came.
    for (const era of s.eras) configs.push({ label: `era: ${era}`, config: { era } });
    return Promise.all(
      configs.map(({ label, config }) =>
        this.snapshot(e, step, fn, config).then((snap) => ({
          label,
          config,
          stepsRun: snap.stepsRun,
          target: snap.explanation.target,
          site: snap.explanation.stages[2]!.bytes,
          hops: snap.hops,
          callbacks: snap.explanation.callbacks,
          instructions: snap.hops.reduce((n, h) => n + h.instructions, 0),
          fault: snap.fault,
        })),
      ),
    );
  }

  private snapshot(e: Entry, step: number, fn: string | undefined, config: Partial<ScenarioConfig> = {}): Promise<StepSnapshot> {
    return this.cached(`snap|${e.key}|${step}|${fn ?? ''}|${JSON.stringify(config)}`, () => stepSnapshot(e.scenario, step, fn, config));
  }

  private checks(e: Entry): Promise<ScenarioResult> {
    return this.cached(`checks|${e.key}`, () => runScenario(e.scenario));
  }

  private upload(text: string, name: string): Entry {
    const file = (name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'upload.yaml');
    let scenario: Scenario;
    try {
      scenario = loadScenarioText(text, file);
    } catch (err) {
      if (err instanceof ScenarioError) throw scenarioError(err);
      throw err;
    }
    for (const cfg of [scenario.config, scenario.variant?.config ?? {}]) {
      if ((cfg.functions ?? 0) > MAX_UPLOAD_FUNCTIONS) {
        const line = text.split('\n').findIndex((l) => /\bfunctions\s*:/.test(l)) + 1;
        throw new HttpError(400, `${file}:${line}: config.functions: at most ${MAX_UPLOAD_FUNCTIONS} in an upload`, {
          file,
          line,
          key: 'config.functions',
          reason: `at most ${MAX_UPLOAD_FUNCTIONS} in an upload`,
        });
      }
    }
    const key = `upload-${createHash('sha256').update(file + '\0' + text).digest('hex').slice(0, 12)}`;
    const entry = { key, text, scenario, builtin: false };
    this.scenarios.set(key, entry);
    const uploads = [...this.scenarios.values()].filter((x) => !x.builtin);
    if (uploads.length > MAX_UPLOADS) this.scenarios.delete(uploads[0]!.key);
    return entry;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const q = url.searchParams;
      const asset = req.method === 'GET' ? this.assets.get(url.pathname) : undefined;
      if (asset) {
        res.writeHead(200, {
          'content-type': asset.type,
          'cache-control': 'no-cache',
          'x-content-type-options': 'nosniff',
          'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
        });
        res.end(asset.body);
        return;
      }
      if (url.pathname === '/favicon.ico') {
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && url.pathname === '/api/upload') {
        const text = await readBody(req, MAX_UPLOAD_BYTES);
        const e = this.upload(text, q.get('name') ?? 'upload.yaml');
        return json(res, 200, await this.describe(e));
      }
      if (req.method !== 'GET') throw new HttpError(405, 'method not allowed');
      switch (url.pathname) {
        case '/api/scenarios':
          return json(
            res,
            200,
            [...this.scenarios.values()].filter((x) => x.builtin).map((x) => ({ key: x.key, name: x.scenario.name, description: x.scenario.description, steps: x.scenario.steps.length })),
          );
        case '/api/scenario':
          return json(res, 200, await this.describe(this.entry(q.get('name'))));
        case '/api/snapshot': {
          const e = this.entry(q.get('name'));
          return json(res, 200, await this.snapshot(e, this.step(e, q.get('step')), this.fn(q.get('fn'))));
        }
        case '/api/compare': {
          const e = this.entry(q.get('name'));
          return json(res, 200, await this.compare(e, this.step(e, q.get('step')), this.fn(q.get('fn'))));
        }
        case '/api/checks':
          return json(res, 200, await this.checks(this.entry(q.get('name'))));
        default:
          throw new HttpError(404, 'not found');
      }
    } catch (err) {
      if (err instanceof HttpError) return json(res, err.status, { error: err.message, ...err.extra });
      if (err instanceof ScenarioError) {
        const h = scenarioError(err);
        return json(res, h.status, { error: h.message, ...h.extra });
      }
      if (err instanceof RangeError) return json(res, 400, { error: err.message });
      return json(res, 500, { error: `internal error: ${(err as Error).message}` });
    }
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(new HttpError(413, `upload too large: at most ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        reject(new HttpError(413, `upload too large: at most ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (e) => {
      if (!done) reject(e);
      done = true;
    });
  });
}

export interface Serving {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts the server; port 0 picks a free one. */
export function serve(port: number, host: string): Promise<Serving> {
  const app = new WebApp();
  const server = createServer((req, res) => void app.handle(req, res));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        server,
        url: `http://${h}:${a.port}/`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
