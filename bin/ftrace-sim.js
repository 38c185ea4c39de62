#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0-or-later
// The installed command: runs the CLI compiled by `npm run build` (run by
// `npm ci` and `npm install` through the prepare script) from dist/.
// During development, `npm run dev -- ...` runs the TypeScript sources instead.
import { existsSync } from 'node:fs';

const built = new URL('../dist/bin/cli.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('ftrace-sim: the CLI is not built (dist/bin/cli.js is missing): run `npm run build`, or `npm run dev -- ...` to run the sources\n');
  process.exit(3);
}
await import(built.href);
