// SPDX-License-Identifier: GPL-2.0-or-later
/* The teaching page's server: its JSON is the simulator's state, and no request reaches a file. */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { explainFunction } from '../../kernel-model/views/explain.js';
import { enabledFunctions } from '../../kernel-model/views/tracefs.js';
import { loadScenarioFile } from '../../scenarios/engine/load.js';
import { inspectScenario } from '../../scenarios/engine/run.js';
import { MAX_UPLOAD_BYTES, serve, type Serving } from '../../web/server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let srv: Serving;

beforeAll(async () => {
  srv = await serve(0, '127.0.0.1');
});
afterAll(async () => {
  await srv.close();
});

/** A raw request: the path goes out exactly as written (no URL normalisation on our side). */
function raw(method: string, path: string, body?: Buffer | string, headers: Record<string, string | number> = {}): Promise<{ status: number; text: string }> {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function getJson<T>(path: string): Promise<T> {
  const r = await raw('GET', path);
  expect(r.status).toBe(200);
  return JSON.parse(r.text) as T;
}

interface Snap {
  function: string;
  stepsRun: number;
  explanation: { site: string; target: string; stages: { bytes: string }[]; trampoline: { ops: string; lines: { offset: number; bytes: string; note: string }[] } | null; path: string[]; callbacks: { callback: string; rdx: string; ops: string | null; ownOps: boolean }[] };
  caller: { name: string; lines: { offset: number; bytes: string; role: string | null }[] };
  hops: { name: string; instructions: number }[];
  ops: { name: string; address: string; trampoline: string | null }[];
  memory: { objects: { name: string; kind: string; region: string }[] };
  tracefs: { enabled_functions: string };
}

test('the page and its assets are served from memory, with nothing from another host', async () => {
  const page = await raw('GET', '/');
  expect(page.status).toBe(200);
  expect(page.text).toContain('<script type="module" src="/app.js">');
  for (const p of ['/', '/app.js', '/app.css']) {
    const r = await raw('GET', p);
    expect(r.status).toBe(200);
    expect(r.text).not.toMatch(/https?:\/\/|\/\/cdn/);
  }
});

test('a snapshot is what explain and tracefs read from the same step', async () => {
  const snap = await getJson<Snap>('/api/snapshot?name=kprobe-plus-function-tracer&step=3&fn=vfs_read');
  const s = loadScenarioFile(join(root, 'scenarios/kprobe-plus-function-tracer.yaml'), 'scenarios/kprobe-plus-function-tracer.yaml');
  let enabled = '';
  let ex: ReturnType<typeof explainFunction> | undefined;
  await inspectScenario(s, 3, ({ kernel, ftrace }) => {
    enabled = enabledFunctions(kernel, ftrace);
    ex = explainFunction(kernel, ftrace, 'vfs_read');
  });
  expect(snap.explanation.target).toBe('ftrace_regs_caller');
  expect(snap.explanation.stages.map((x) => x.bytes)).toEqual(ex!.stages.map((x) => x.bytes));
  expect(snap.explanation.path).toEqual(ex!.path);
  expect(snap.tracefs.enabled_functions).toBe(enabled);
  // The hops are explain's path, with the instructions spent in each.
  expect(snap.hops.map((h) => h.name)).toEqual(ex!.path.slice(0, -1));
  expect(snap.hops.every((h) => h.instructions >= 1)).toBe(true);
  expect(snap.hops.some((h) => h.name === 'ftrace_ops_list_func' && h.instructions > 1)).toBe(true);
  // Each callback got its own ops in %rdx: the address of the ops of that name.
  expect(snap.explanation.callbacks.length).toBe(2);
  for (const cb of snap.explanation.callbacks) {
    expect(cb.ownOps).toBe(true);
    expect(cb.rdx).toBe(snap.ops.find((o) => o.name === cb.ops)!.address);
  }
});

test('the first step with a trampoline, the trampoline beside its caller, and the memory map follow the steps', async () => {
  const doc = await getJson<{ openStep: number; steps: { line: number; endLine: number }[]; text: string }>('/api/scenario?name=kprobe-plus-function-tracer');
  expect(doc.openStep).toBe(1);
  expect(doc.text.split('\n')[doc.steps[1]!.line - 1]).toMatch(/register: tracer/);
  // Every step of every built-in scenario is highlighted from its `- kind:` to its last line.
  for (const { key } of await getJson<{ key: string }[]>('/api/scenarios')) {
    const d = await getJson<{ steps: { kind: string; line: number; endLine: number }[]; text: string }>(`/api/scenario?name=${key}`);
    const lines = d.text.split('\n');
    d.steps.forEach((st, i) => {
      expect(lines[st.line - 1]).toMatch(new RegExp(`^\\s*- ${st.kind}:`));
      expect(st.endLine).toBeGreaterThanOrEqual(st.line);
      if (i + 1 < d.steps.length) expect(d.steps[i + 1]!.line).toBe(st.endLine + 1 + lines.slice(st.endLine, d.steps[i + 1]!.line - 1).length);
    });
  }
  const before = await getJson<Snap>('/api/snapshot?name=kprobe-plus-function-tracer&step=0&fn=vfs_read');
  const after = await getJson<Snap>('/api/snapshot?name=kprobe-plus-function-tracer&step=1&fn=vfs_read');
  expect(before.explanation.target).toBe('nop');
  expect(before.memory.objects.filter((o) => o.kind === 'trampoline')).toEqual([]);
  expect(after.memory.objects.filter((o) => o.kind === 'trampoline')).toEqual([expect.objectContaining({ name: 'trampoline of tracer', region: 'modules' })]);
  const t = after.explanation.trampoline!;
  expect(t.ops).toBe('tracer');
  expect(after.caller.name).toBe('ftrace_caller');
  const op = t.lines.find((l) => l.note.startsWith('48 8b 15'))!;
  const orig = after.caller.lines.find((l) => l.role === 'op_ptr')!;
  expect(op.offset).toBe(orig.offset);
  expect(op.bytes.slice(0, 8)).toBe('48 8b 15');
  expect(orig.bytes.slice(0, 8)).toBe('48 8b 15');
  expect(op.bytes.slice(9)).not.toBe(orig.bytes.slice(9));
  // Every other copied line holds the caller's bytes at the same offset.
  for (const l of t.lines.filter((x) => x.note.startsWith('copied from'))) {
    expect(after.caller.lines.find((c) => c.offset === l.offset)!.bytes).toBe(l.bytes);
  }
});

test('every era the scenario describes, side by side', async () => {
  const c = await getJson<{ label: string; target: string; instructions: number }[]>('/api/compare?name=kprobe-plus-function-tracer&step=3&fn=ksys_read');
  expect(c.map((x) => x.label)).toEqual(['era: 3.17', 'era: 3.18', 'era: 3.19', 'era: modern']);
  expect(c[0]!.target).toBe('ftrace_caller');
  expect(c[1]!.target).toBe('trampoline(tracer)');
  expect(c[1]!.instructions).toBeLessThan(c[0]!.instructions);
});

test('a traced call that crashes the guest is shown up to its fault', async () => {
  // corrupted-op-ptr: at step 1 ftrace_caller loads the ops into %r10 (4c 8b 15), and the callback reads through %rdx.
  const broken = await getJson<Snap & { fault: string | null }>('/api/snapshot?name=corrupted-op-ptr&step=1&fn=vfs_read');
  expect(broken.explanation.target).toBe('ftrace_caller');
  expect(broken.explanation.stages[2]!.bytes).toMatch(/^e8 /);
  // %rax holds a non-canonical address: with page tables walked (Unicorn 2.1) the access is a
  // general-protection fault (#GP, vector 13), as on hardware; 2.0.1 reports it unmapped.
  expect(broken.fault).toMatch(/^guest fault: (unmapped-read|unhandled-interrupt)\b.*<function_trace_call\+0x/);
  expect(broken.hops[0]!.name).toBe('vfs_read call site');
  expect(broken.hops.at(-1)!.name).toBe('function_trace_call');
  const repaired = await getJson<Snap & { fault: string | null }>('/api/snapshot?name=corrupted-op-ptr&step=3&fn=vfs_read');
  expect(repaired.fault).toBeNull();
  expect(repaired.explanation.callbacks).toEqual([expect.objectContaining({ ops: 'tracer', ownOps: true })]);
});

test('no request path reaches the file system', async () => {
  const secret = readFileSync(join(root, 'package.json'), 'utf8');
  const probes = [
    '/../package.json',
    '/../../etc/passwd',
    '/%2e%2e/package.json',
    '/%2e%2e%2f%2e%2e%2fpackage.json',
    '/app.js/../../package.json',
    '/static/app.js',
    '/web/server.ts',
    '/scenarios/unregister.yaml',
    '//etc/passwd',
    '/api/scenario?name=../package.json',
    '/api/scenario?name=%2Fetc%2Fpasswd',
    '/api/scenario?name=..%2F..%2Fpackage',
    '/api/scenario?name=tests/fixtures/failing.yaml',
    '/api/snapshot?name=../../package&step=0',
    '/api/snapshot?name=unregister&step=0&fn=../../package.json',
    '/api/checks?name=/work',
  ];
  for (const p of probes) {
    const r = await raw('GET', p);
    expect([400, 404]).toContain(r.status);
    expect(r.text).not.toContain('devDependencies');
    expect(r.text).not.toContain('root:x:0');
    expect(r.text).not.toContain(secret.slice(0, 40));
  }
  expect((await raw('DELETE', '/api/scenarios')).status).toBe(405);
});

test('uploads: size-limited, checked by the scenario loader with file:line, kept in memory', async () => {
  const big = Buffer.alloc(MAX_UPLOAD_BYTES + 1, 0x23);
  expect((await raw('POST', '/api/upload?name=big.yaml', big, { 'content-length': big.length })).status).toBe(413);
  // Without a declared length (chunked), the limit holds as the bytes arrive.
  expect((await raw('POST', '/api/upload?name=big.yaml', big, { 'transfer-encoding': 'chunked' })).status).toBe(413);

  const bad = await raw('POST', '/api/upload?name=bad-key.yaml', readFileSync(join(root, 'tests/fixtures/bad-key.yaml')));
  expect(bad.status).toBe(400);
  expect(JSON.parse(bad.text)).toMatchObject({ file: 'bad-key.yaml', line: 6, key: 'steps[1].call.tims', reason: "unknown key 'tims'" });
  // A name is only a label: path parts are flattened, never opened.
  const sneaky = await raw('POST', '/api/upload?name=../../etc/passwd', 'name: x\nsteps: [ { register: nobody } ]\n');
  expect(sneaky.status).toBe(400);
  expect(JSON.parse(sneaky.text).file).toBe('.._.._etc_passwd');

  const huge = await raw('POST', '/api/upload?name=huge.yaml', 'name: huge\nconfig:\n  functions: 100000\nops:\n  - { name: t, callback: counter }\nsteps:\n  - register: t\n');
  expect(huge.status).toBe(400);
  expect(JSON.parse(huge.text)).toMatchObject({ file: 'huge.yaml', line: 3, key: 'config.functions' });

  // Names of kernel functions are checked against the booted kernel, as `run` does, before any step runs.
  const unknown = await raw('POST', '/api/upload?name=mine.yaml', 'name: mine\nconfig: { functions: 8 }\nops:\n  - { name: t, callback: counter }\nsteps:\n  - register: t\n  - call: { function: no_such_fn }\n');
  expect(unknown.status).toBe(400);
  expect(JSON.parse(unknown.text)).toMatchObject({ file: 'mine.yaml', line: 7, reason: "unknown function 'no_such_fn'" });

  const text = 'name: mine\nconfig: { functions: 8 }\nops:\n  - { name: t, callback: counter }\nsteps:\n  - register: t\n  - call: { function: vfs_read, times: 2 }\n';
  const ok = await raw('POST', '/api/upload?name=mine.yaml', text);
  expect(ok.status).toBe(200);
  const doc = JSON.parse(ok.text) as { key: string; text: string; openStep: number };
  expect(doc.key).toMatch(/^upload-[0-9a-f]{12}$/);
  expect(doc.text).toBe(text);
  expect(doc.openStep).toBe(0);
  const snap = JSON.parse((await raw('GET', `/api/snapshot?name=${doc.key}&step=1&fn=vfs_read`)).text) as Snap;
  expect(snap.explanation.target).toBe('trampoline(t)');
  expect(snap.explanation.callbacks).toEqual([expect.objectContaining({ callback: 'ftrace_count_probe', ops: 't', ownOps: true })]);
});

test('ftrace-sim serve: listens on loopback, prints its URL with --json, exits 2 on a busy port', async () => {
  const cli = join(root, 'bin', 'ftrace-sim.js');
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('}')) resolve(out);
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    const busy = spawnSync(process.execPath, [cli, 'serve', '--port', new URL(url).port], { cwd: root, encoding: 'utf8' });
    expect(busy.status).toBe(2);
    expect(busy.stderr).toMatch(/^ftrace-sim: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c))));
  expect(code).toBe(0);
});
