#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Makes sure Unicorn 2 (Debian's libunicorn2) can be loaded, since npm has no
 * package for it: run by `npm ci` (postinstall) and by `npm run setup`.
 *   1. already loadable (system, FTRACE_SIM_LIBUNICORN, or .cache/libunicorn): done;
 *   2. root with apt-get: apt-get install libunicorn2;
 *   3. not root: apt-get download + dpkg-deb -x into .cache/libunicorn;
 *   4. otherwise: say exactly what to run, and exit 1.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const localDir = join(root, '.cache', 'libunicorn');
const localLib = join(localDir, 'usr', 'lib', 'x86_64-linux-gnu', 'libunicorn.so.2');
const require = createRequire(import.meta.url);

function tryLoad() {
  const koffi = require('koffi');
  for (const p of [process.env.FTRACE_SIM_LIBUNICORN, localLib, 'libunicorn.so.2']) {
    if (!p || (p !== 'libunicorn.so.2' && !existsSync(p))) continue;
    try {
      const lib = koffi.load(p);
      const version = lib.func('unsigned int uc_version(_Out_ unsigned int *major, _Out_ unsigned int *minor)');
      // uc_version returns major.minor.patch.extra packed in bytes: any 2.x from 2.0.1 on will do.
      const packed = Number(version(null, null));
      const [major, minor, patch] = [(packed >>> 24) & 0xff, (packed >>> 16) & 0xff, (packed >>> 8) & 0xff];
      if (major === 2 && (minor > 0 || patch >= 1)) return `${p} (Unicorn ${major}.${minor}.${patch})`;
    } catch {
      // try the next place
    }
  }
  return undefined;
}

// apt's chatter (debconf notes and the like) is shown only when the command fails.
function run(cmd, args, opts = {}) {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, ...opts });
  } catch (e) {
    const err = e.stderr ? String(e.stderr).trim() : '';
    throw new Error(`${cmd} ${args.join(' ')} failed${err ? `:\n${err}` : ''}`);
  }
}

function have(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const found = tryLoad();
if (found) {
  if (process.argv.includes('--verbose')) console.log(`libunicorn: ${found}`);
  process.exit(0);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
try {
  if (isRoot && have('apt-get')) {
    console.log('ftrace-sim: installing Debian package libunicorn2 (apt-get)...');
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', 'libunicorn2']);
  } else if (have('apt-get') && have('dpkg-deb')) {
    console.log('ftrace-sim: unpacking libunicorn2 into .cache/libunicorn (no root)...');
    rmSync(localDir, { recursive: true, force: true });
    mkdirSync(localDir, { recursive: true });
    run('apt-get', ['download', 'libunicorn2'], { cwd: localDir });
    const deb = readdirSync(localDir).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download gave no .deb');
    run('dpkg-deb', ['-x', join(localDir, deb), localDir]);
  }
} catch (e) {
  console.error(`ftrace-sim: could not install libunicorn2 automatically: ${e.message}`);
}

const after = tryLoad();
if (after) {
  console.log(`ftrace-sim: libunicorn ready: ${after}`);
  process.exit(0);
}
console.error(
  [
    'ftrace-sim needs Unicorn 2 (Debian package libunicorn2), and it could not be installed here.',
    'Run, as root:',
    '    apt-get update && apt-get install -y libunicorn2',
    'or point FTRACE_SIM_LIBUNICORN at a libunicorn.so.2 of version 2.0.1 or later, then run `npm run setup` again.',
  ].join('\n'),
);
process.exit(1);
