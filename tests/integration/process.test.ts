// SPDX-License-Identifier: GPL-2.0-or-later
/* The installed command as a process: its exit status, and a reader that goes away. */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const command = join(root, 'bin', 'ftrace-sim.js');

test('the installed command runs the CLI and exits with its status', () => {
  const r = spawnSync(process.execPath, [command, 'run', 'tests/fixtures/bad-key.yaml'], { cwd: root, encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr.trim()).toBe("ftrace-sim: tests/fixtures/bad-key.yaml:6: steps[1].call.tims: unknown key 'tims'");
  expect(r.stdout).toBe('');
});

test('a reader that goes away ends the command quietly with status 0', async () => {
  const child = spawn(process.execPath, [command, 'disasm', 'ftrace_caller', '--count', '100'], { cwd: root });
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  expect(err).toBe('');
  expect(code).toBe(0);
});
