// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `npm run screenshots`: three steps of the teaching page, as a projector
 * shows them (1600x1000), into docs/. Needs Debian's chromium.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../web/server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = [
  { file: 'web-step1-trampoline.png', query: 'step=1&fn=vfs_read', scrollTo: null },
  { file: 'web-step3-list-function.png', query: 'step=3&fn=vfs_read', scrollTo: '#pathCard' },
  { file: 'web-step12-eras.png', query: 'step=12&fn=ksys_read&large=1', scrollTo: '#tracefsCard' },
] as const;

const srv = await serve(0, '127.0.0.1');
const browser = await chromium.launch({ executablePath: process.env.FTRACE_SIM_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  for (const s of SHOTS) {
    await page.goto(`${srv.url}?scenario=kprobe-plus-function-tracer&${s.query}`);
    await page.waitForSelector('body[data-shown]', { timeout: 30000 });
    await page.waitForSelector('#eras .era');
    await page.waitForSelector('#checks li.pass, #checks li.fail, #checks li.muted:not(:first-child)', { state: 'attached' }).catch(() => undefined);
    // Scrolled so the card sits just below the sticky header (run in the page, hence a string).
    if (s.scrollTo) await page.evaluate(`window.scrollTo(0, document.querySelector('${s.scrollTo}').getBoundingClientRect().top + window.scrollY - document.getElementById('top').offsetHeight - 12)`);
    await page.waitForTimeout(1800); // let the appear/flash animations end
    await page.screenshot({ path: join(root, 'docs', s.file) });
    console.log(`docs/${s.file}`);
  }
} finally {
  await browser.close();
  await srv.close();
}
