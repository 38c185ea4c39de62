// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim serve`: the teaching page, on a local web server. */
import type { Command } from 'commander';
import { say, UsageError, intOption, printJson } from '../output.js';

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the teaching page: scenarios step by step, drawn from the simulator (loopback only by default)')
    .option('--port <n>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--json', 'print {url} as JSON once listening')
    .action(async (opts: { port: string; host: string; json?: boolean }) => {
      const port = intOption('--port', opts.port, 0, 65535);
      const { serve } = await import('../../web/server.js');
      const s = await serve(port, opts.host).catch((e: NodeJS.ErrnoException) => {
        // A busy port or an address not on this machine is the user's to change.
        if (e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES' || e.code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${opts.host}:${port}: ${e.code}`);
        throw e;
      });
      if (opts.json) printJson({ url: s.url });
      else say(`ftrace-sim: serving the teaching page at ${s.url} (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        const stop = () => void s.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
