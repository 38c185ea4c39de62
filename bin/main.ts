// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace-sim's commands, as one function from arguments to an exit status:
 * 0 all good, 1 a check failed, 2 bad usage or input. The process entry
 * (cli.ts) and the tests both call it.
 */
import { Command, CommanderError } from 'commander';
import { AsmError } from '../asm/assembler.js';
import { UnicornUnavailableError } from '../emu/index.js';
import { ScenarioError } from '../scenarios/engine/load.js';
import { bootCommand } from './commands/boot.js';
import { disasmCommand } from './commands/disasm.js';
import { explainCommand } from './commands/explain.js';
import { runCommand } from './commands/run.js';
import { smpCommands } from './commands/smp.js';
import { tracefsCommand } from './commands/tracefs.js';
import { EXIT, UsageError, currentExitCode, processIo, useIo, write, writeErr, type Io } from './output.js';

function program(): Command {
  const p = new Command('ftrace-sim')
    .description('Linux x86-64 dynamic ftrace and its per-ops trampolines, run as real x86-64 code in Unicorn')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr });
  bootCommand(p);
  disasmCommand(p);
  runCommand(p);
  tracefsCommand(p);
  explainCommand(p);
  smpCommands(p);
  for (const c of p.commands) c.exitOverride().configureOutput({ writeOut: write, writeErr });
  return p;
}

/** Runs the CLI on `args` (without node and the script), writing to `io`; returns the exit status. */
export async function main(args: readonly string[], io: Io = processIo): Promise<number> {
  const prev = useIo(io);
  try {
    await program().parseAsync([...args], { from: 'user' });
    return currentExitCode();
  } catch (e) {
    // --help and --version end here too, with exit code 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (e instanceof UsageError || e instanceof RangeError || e instanceof UnicornUnavailableError || e instanceof AsmError || e instanceof ScenarioError) {
      io.err(`ftrace-sim: ${e.message}\n`);
      return EXIT.USAGE;
    }
    // Anything else is a bug of ours: one line, and the stack only when asked for.
    const err = e instanceof Error ? e : new Error(String(e));
    io.err(`ftrace-sim: internal error: ${err.message}\n`);
    io.err(process.env.FTRACE_SIM_DEBUG ? `${err.stack}\n` : '(set FTRACE_SIM_DEBUG=1 to see where)\n');
    return EXIT.CHECK_FAILED;
  } finally {
    useIo(prev);
  }
}
