// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The teaching page in a real browser (Debian's chromium, driven by
 * playwright-core), loaded from the real server: what a person sees.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serve, type Serving } from '../../web/server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.FTRACE_SIM_CHROMIUM ?? '/usr/bin/chromium';

let srv: Serving;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y --no-install-recommends chromium (.ci/run does)`);
  srv = await serve(0, '127.0.0.1');
  // The browser starts while the server boots its first kernels.
  [browser] = await Promise.all([chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] }), fetch(`${srv.url}api/scenario?name=kprobe-plus-function-tracer`)]);
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});
afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

interface Snap {
  explanation: { stages: { bytes: string }[]; trampoline: { lines: { bytes: string; note: string }[] } | null };
  ops: { name: string; address: string }[];
}

async function snapshot(step: number, fn: string): Promise<Snap> {
  const r = await fetch(`${srv.url}api/snapshot?name=kprobe-plus-function-tracer&step=${step}&fn=${fn}`);
  return (await r.json()) as Snap;
}

const shown = (p: Page, what: string) => p.waitForSelector(`body[data-shown="${what}"]`, { timeout: 20000 });
const texts = (p: Page, sel: string) => p.locator(sel).allTextContents();

test('opens on kprobe-plus-function-tracer at its first trampoline, and steps with the keyboard', async () => {
  await page.goto(srv.url);
  await shown(page, 'kprobe-plus-function-tracer:1:vfs_read');
  expect(await page.locator('#stepLabel').textContent()).toBe('step 1 of 17: register');
  expect(await page.locator('#trampTitle').textContent()).toMatch(/^The trampoline of tracer .* beside ftrace_caller$/);
  expect(await page.locator('#memory .obj.o-trampoline').textContent()).toMatch(/^trampoline of tracer/);
  // The step's YAML is highlighted.
  expect(await texts(page, '#yaml .yl.cur')).toEqual([expect.stringContaining('register: tracer')]);

  await page.locator('body').press('ArrowRight');
  await page.locator('body').press('ArrowRight');
  await shown(page, 'kprobe-plus-function-tracer:3:vfs_read');
  expect(page.url()).toContain('scenario=kprobe-plus-function-tracer&step=3&fn=vfs_read');
  // The call site's bytes at step 3: vfs_read now calls ftrace_regs_caller.
  const want = (await snapshot(3, 'vfs_read')).explanation.stages[2]!.bytes;
  const now = (await texts(page, '#site tr:last-child .b')).join(' ');
  expect(now).toBe(want);
  expect(now).not.toBe((await snapshot(1, 'vfs_read')).explanation.stages[2]!.bytes);
  expect(await page.locator('#target').textContent()).toBe('now calls ftrace_regs_caller');
  expect(await page.locator('#trampTitle').textContent()).toMatch(/^No trampoline: the site calls ftrace_regs_caller/);
  // The hops include the list function, each with its instruction count.
  const hops = await texts(page, '#hops .hop .name');
  expect(hops).toContain('ftrace_ops_list_func');
  expect(await texts(page, '#hops .hop .count')).toEqual(expect.arrayContaining([expect.stringMatching(/^\d+ insn$/)]));
});

test('the trampoline marks its rewritten displacement, and each callback shows its own ops in %rdx', async () => {
  await page.goto(`${srv.url}?scenario=kprobe-plus-function-tracer&step=3&fn=ksys_read`);
  await shown(page, 'kprobe-plus-function-tracer:3:ksys_read');
  const snap = await snapshot(3, 'ksys_read');
  const op = snap.explanation.trampoline!.lines.find((l) => l.note.startsWith('48 8b 15'))!;
  const disp = await texts(page, 'td.rewritten .b.disp');
  expect(disp.join(' ')).toBe(op.bytes.split(' ').slice(3).join(' '));
  const orig = await texts(page, 'td.orig-op .b');
  expect(orig.slice(0, 3)).toEqual(['48', '8b', '15']);
  expect(orig.slice(3)).not.toEqual(disp);
  // Hovering a byte explains it.
  await page.locator('td.rewritten .b.disp').first().hover();
  expect(await page.locator('#tip').textContent()).toMatch(/rewritten disp32.*ops slot/);
  expect(await page.locator('#tip').isVisible()).toBe(true);

  // The checks up to this step, from the whole run of the scenario.
  const run = (await (await fetch(`${srv.url}api/checks?name=kprobe-plus-function-tracer`)).json()) as { checks: { name: string; passed: boolean }[] };
  const upTo3 = run.checks.filter((c) => /^steps\[[0-3]\]/.test(c.name));
  expect(upTo3.length).toBeGreaterThan(0);
  await page.waitForSelector('#checks li.summary');
  expect(await page.locator('#checks li.summary').textContent()).toBe(`${upTo3.length} of ${upTo3.length} passed`);

  const rows = page.locator('#callbacks tbody tr');
  expect(await rows.count()).toBe(1);
  const rdx = await rows.locator('td.rdx').textContent();
  expect(await rows.locator('.opsaddr').textContent()).toBe(rdx);
  expect(rdx).toBe(snap.ops.find((o) => o.name === 'tracer')!.address);
  expect(await rows.locator('.verdict').textContent()).toBe('✔ %rdx = &tracer');

  // Playing the call walks the hops; at the callback's hop its row lights up.
  await page.locator('body').press('p');
  await page.waitForSelector('#callbacks tbody tr.active', { timeout: 10000 });
  expect(await page.locator('#hops .hop.active .name').textContent()).toBe(await rows.locator('td.cb').textContent());
  expect(await page.locator('#hops .hop.done').count()).toBeGreaterThan(0);
});

test('an uploaded bad file shows its error line, and the scenario on show stays', async () => {
  await page.goto(`${srv.url}?step=0`);
  await shown(page, 'kprobe-plus-function-tracer:0:vfs_read');
  await page.setInputFiles('#upload', join(root, 'tests/fixtures/bad-key.yaml'));
  await page.waitForSelector('#error:not([hidden])');
  expect(await page.locator('#error').textContent()).toBe("bad-key.yaml:6: steps[1].call.tims: unknown key 'tims' (nothing was run)");
  expect(await texts(page, '#yaml .yl.bad')).toEqual([expect.stringContaining('tims: 2')]);
  // The scenario on show stays as it was.
  expect(await page.locator('#scenario').inputValue()).toBe('kprobe-plus-function-tracer');
});

test('large type and the era comparison', async () => {
  await page.goto(`${srv.url}?scenario=kprobe-plus-function-tracer&step=3&fn=ksys_read&large=1`);
  await shown(page, 'kprobe-plus-function-tracer:3:ksys_read');
  expect(await page.locator('body').getAttribute('class')).toContain('large');
  await page.waitForSelector('#eras .era');
  expect(await texts(page, '#eras .era h3')).toEqual(['era: 3.17', 'era: 3.18', 'era: 3.19', 'era: modern']);
  await page.locator('#slider').fill('5');
  await shown(page, 'kprobe-plus-function-tracer:5:ksys_read');
  expect(page.url()).toContain('step=5');
  await page.locator('body').press('l');
  expect(await page.locator('body').getAttribute('class')).not.toContain('large');
  expect(page.url()).not.toContain('large=1');
});
