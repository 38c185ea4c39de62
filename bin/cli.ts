// SPDX-License-Identifier: GPL-2.0-or-later
/* ftrace-sim: a CPU-emulated simulator of Linux x86-64 dynamic ftrace. */
import { main } from './main.js';
import { currentExitCode } from './output.js';

// A reader that goes away (`ftrace-sim run --all | head -1`) is not an error:
// stop quietly with the status so far.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(currentExitCode());
  });
}

process.exitCode = await main(process.argv.slice(2));
