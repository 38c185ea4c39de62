// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The package's root folder, found from a module's own URL: the same answer
 * whether the module runs from its TypeScript source (tests, `npm run dev`)
 * or from the build under dist/ (the installed command), which is one level
 * deeper. Files read at run time (x86 sources, scenarios, .cache) live there.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(moduleUrl)}`);
    dir = up;
  }
  return dir;
}
