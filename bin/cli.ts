// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace-sim: a CPU-emulated simulator of Linux x86-64 dynamic ftrace.
 * Exit codes: 0 all good, 1 a check failed, 2 bad usage or input.
 */
import { Command, CommanderError } from 'commander';
import { bootCommand } from './commands/boot.js';
import { disasmCommand } from './commands/disasm.js';
import { runCommand } from './commands/run.js';
import { tracefsCommand } from './commands/tracefs.js';
import { explainCommand } from './commands/explain.js';
import { smpCommands } from './commands/smp.js';
import { EXIT, UsageError } from './output.js';

/** Errors about the user's input or machine (UnicornUnavailableError, AsmError, ScenarioError). */
const INPUT_ERRORS = new Set(['UnicornUnavailableError', 'AsmError', 'ScenarioError']);

const program = new Command('ftrace-sim')
  .description('Linux x86-64 dynamic ftrace and its per-ops trampolines, run as real x86-64 code in Unicorn')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

bootCommand(program);
disasmCommand(program);
runCommand(program);
tracefsCommand(program);
explainCommand(program);
smpCommands(program);
for (const c of program.commands) c.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version end here too, with exit code 0.
    process.exit(e.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  }
  if (e instanceof UsageError || e instanceof RangeError) {
    process.stderr.write(`ftrace-sim: ${e.message}\n`);
    process.exit(EXIT.USAGE);
  }
  // Known by name: their modules load only when a command needs them (a fast --help).
  if (e instanceof Error && INPUT_ERRORS.has(e.name)) {
    process.stderr.write(`ftrace-sim: ${e.message}\n`);
    process.exit(EXIT.USAGE);
  }
  // Anything else is a bug of ours: one line, and the stack only when asked for.
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`ftrace-sim: internal error: ${err.message}\n`);
  if (process.env.FTRACE_SIM_DEBUG) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write('(set FTRACE_SIM_DEBUG=1 to see where)\n');
  process.exit(EXIT.CHECK_FAILED);
}
