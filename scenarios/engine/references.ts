// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The names a scenario uses that only the kernel it boots can resolve:
 * functions, symbols in arguments, where a `corrupt` step writes. They are
 * checked against the kernel's image (its assembled text and data layout)
 * before anything runs, so a bad name in any of several files stops the
 * whole run before the first scenario boots.
 */
import { KERNEL_TEXT } from '../../kernel-model/abi.js';
import { eraRules } from '../../kernel-model/ftrace/era.js';
import { firstInRange } from '../../kernel-model/ftrace/records.js';
import { kernelImage, resolveConfig, type CallSites, type Era } from '../../kernel-model/kernel.js';
import { ScenarioError } from './load.js';
import type { Scenario, Step, Where } from './types.js';

/**
 * Rejects the first name in `s` that its kernel (of its own era, or of
 * `era`) does not have; on its own era, its variant's kernel too.
 */
export async function checkReferences(s: Scenario, era: Era = s.config.era, callsites: CallSites = s.config.callsites): Promise<void> {
  const other = s.variant?.config.era;
  if (era === s.config.era && other !== undefined && other !== era) await checkNames(s, other, callsites);
  await checkNames(s, era, callsites);
}

async function checkNames(s: Scenario, era: Era, callsites: CallSites): Promise<void> {
  const { program, layout } = await kernelImage(resolveConfig({ ...s.config, era, callsites }));
  const kernel = era === s.config.era ? "the kernel's" : `the ${eraRules(era).version} kernel's`;
  const sites = program.mcountLoc;
  const fail = (where: Where, reason: string): never => {
    throw new ScenarioError(where, reason);
  };
  const text = (name: string) => program.symbols.get(name);
  // A function is traced if a call site lies in it: its first instruction
  // with fentry, after the frame set-up with mcount (the sites ascend, as the text is laid out).
  const traced = (name: string) => {
    const sym = text(name);
    return sym !== undefined && firstInRange(sites, sym.address, sym.address + BigInt(Math.max(sym.size, 1))) >= 0;
  };
  const textEnd = KERNEL_TEXT + BigInt(program.bytes.length);
  const opsNames = new Set(s.ops.map((o) => o.name));
  const key = (step: Step, more: string): Where => ({ ...step.where, key: `${step.where.key}.${more}` });

  for (const step of s.steps) {
    switch (step.kind) {
      case 'call':
      case 'measure':
        if (!text(step.function)) fail(step.where, `unknown function '${step.function}'`);
        if (step.kind === 'measure' && !traced(step.function)) fail(step.where, `'${step.function}' has no fentry call site to measure`);
        for (const a of step.args ?? []) {
          if (typeof a === 'string' && !text(a.slice(1)) && !layout.symbols.has(a.slice(1))) fail(step.where, `unknown symbol in argument '${a}'`);
        }
        break;
      case 'corrupt': {
        const sym = text(step.at);
        if (!sym) fail(key(step, 'at'), `'${step.at}' is not a symbol of ${kernel} text`);
        const start = sym!.address + BigInt(step.offset);
        if (start + BigInt(step.bytes.length) > textEnd) {
          fail(key(step, 'offset'), `${step.at}+${step.offset} and ${step.bytes.length} bytes run past the end of ${kernel} text`);
        }
        break;
      }
      case 'expect':
        for (const fn of Object.keys(step.expect.callsite ?? {})) {
          if (!text(fn)) fail(key(step, `callsite.${fn}`), `unknown function '${fn}'`);
          if (!traced(fn)) fail(key(step, `callsite.${fn}`), `'${fn}' has no fentry call site`);
        }
        if (step.expect.ftraceCall !== undefined && !opsNames.has(step.expect.ftraceCall) && !text(step.expect.ftraceCall)) {
          fail(key(step, 'ftrace_call'), `'${step.expect.ftraceCall}' is neither an ops of the scenario nor a kernel function`);
        }
        break;
      case 'preempt':
        // trampoline(<ops>) is made at run time; the loader checked the ops.
        if (step.trampolineOf === undefined && !text(step.at)) fail(key(step, 'at'), `'${step.at}' is not a symbol of ${kernel} text`);
        break;
      default:
        break;
    }
  }
}
