// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace-sim's commands, as one function from arguments to an exit status:
 * 0 all good, 1 a check failed, 2 bad usage or input, 3 a bug in ftrace-sim.
 * The process entry (cli.ts) and the tests both call it.
 */
import { Command, CommanderError } from 'commander';
import { bootCommand } from './commands/boot.js';
import { disasmCommand } from './commands/disasm.js';
import { compareCommand } from './commands/compare.js';
import { explainCommand } from './commands/explain.js';
import { recordCommand } from './commands/record.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { setMaxFileSize } from './commands/scenario-arg.js';
import { smpCommands } from './commands/smp.js';
import { tracefsCommand } from './commands/tracefs.js';
import { EXIT, UsageError, currentExitCode, processIo, setExitCode, useIo, write, writeErr, type Io } from './output.js';

/** Bad input or a machine without what it needs: ConfigError, UnicornUnavailableError, AsmError, ScenarioError. */
const INPUT_ERRORS = new Set(['ConfigError', 'UnicornUnavailableError', 'AsmError', 'ScenarioError']);
/** GuestFault, FtraceBugError, KernelDataCorrupted. */
const BROKEN_KERNEL = new Set(['GuestFault', 'FtraceBugError', 'KernelDataCorrupted']);

function program(): Command {
  const p = new Command('ftrace-sim')
    .description('Linux x86-64 dynamic ftrace and its per-ops trampolines, run as real x86-64 code in Unicorn')
    .showHelpAfterError('(run with --help for usage)')
    .option('--max-file-size <bytes>', 'the largest scenario file read, in bytes (default 1 MiB)')
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr })
    .hook('preAction', (root) => setMaxFileSize(root.opts<{ maxFileSize?: string }>().maxFileSize));
  bootCommand(p);
  disasmCommand(p);
  runCommand(p);
  compareCommand(p);
  recordCommand(p);
  tracefsCommand(p);
  explainCommand(p);
  smpCommands(p);
  serveCommand(p);
  for (const c of p.commands) c.exitOverride().configureOutput({ writeOut: write, writeErr });
  return p;
}

/** Runs the CLI on `args` (without node and the script), writing to `io`; returns the exit status. */
export async function main(args: readonly string[], io: Io = processIo): Promise<number> {
  const prev = useIo(io);
  setExitCode(EXIT.OK);
  try {
    await program().parseAsync([...args], { from: 'user' });
    return currentExitCode();
  } catch (e) {
    // --help and --version end here too, with exit code 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    // Errors are told apart by name: their modules load only when a command
    // needs them, which keeps `--help` from loading Unicorn and Keystone.
    const name = e instanceof Error ? e.name : '';
    if (e instanceof UsageError || INPUT_ERRORS.has(name)) {
      io.err(`ftrace-sim: ${(e as Error).message}\n`);
      return EXIT.USAGE;
    }
    // The guest crashed, or the kernel's data is not what ftrace built: the
    // kernel is broken, which is what a check failing means.
    if (BROKEN_KERNEL.has(name)) {
      const fault = e as Error & { report?: () => string; kind?: string };
      io.err(`ftrace-sim: ${fault.report ? fault.report() : fault.message}\n`);
      return fault.kind === 'timeout' ? EXIT.BUDGET : EXIT.CHECK_FAILED;
    }
    // Anything else is a bug of ours: one line, and the stack only when asked for.
    const err = e instanceof Error ? e : new Error(String(e));
    io.err(`ftrace-sim: internal error: ${err.message}\n`);
    io.err(process.env.FTRACE_SIM_DEBUG ? `${err.stack}\n` : '(set FTRACE_SIM_DEBUG=1 to see where)\n');
    return EXIT.INTERNAL;
  } finally {
    useIo(prev);
  }
}
