// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checks of what the guest callbacks recorded: the ops each invocation
 * received in %rdx, and the pt_regs a SAVE_REGS callback received in %rcx.
 * Which ops counts as tracing a function is the caller's to say: the current
 * state for a scenario, the states around a change for torture.
 */
import { hex } from '../../emu/index.js';
import type { Ftrace } from '../ftrace/core.js';
import type { FtraceOps } from '../ftrace/ops.js';
import type { TraceEvent } from './ring-buffer.js';

export interface EventProblem {
  seq: bigint;
  function: string;
  problem: string;
}

/** A direct call whose first argument the caller knows: SAVE_REGS callbacks must see it in regs->di. */
export interface KnownCall {
  ip: bigint;
  arg0: bigint;
}

export interface EventRules {
  /** The ops at an address that may legitimately receive invocations. */
  opsAt: (addr: bigint) => FtraceOps | undefined;
  /** Whether that ops traced the function at ip when the event was written. */
  traced: (ops: FtraceOps, ip: bigint) => boolean;
  known?: KnownCall | undefined;
}

/**
 * Every event must come from an ops the rules accept, that uses the callback
 * that wrote the event and traces the event's ip: that is what %rdx = its own
 * ops means. kprobe_regs events must also carry a pt_regs whose ip is the
 * traced call's return address (site + 5).
 */
export function checkEvents(
  ftrace: Ftrace,
  events: readonly TraceEvent[],
  rules: EventRules,
): { rdx: EventProblem[]; regs: EventProblem[]; regsChecked: number } {
  const rdx: EventProblem[] = [];
  const regs: EventProblem[] = [];
  let regsChecked = 0;
  const { kernel } = ftrace;
  const siteSize = BigInt(ftrace.arch.MCOUNT_INSN_SIZE);
  const name = (a: bigint) => kernel.symbols.format(a, { short: true }) ?? hex(a);
  for (const e of events) {
    const fn = name(e.ip);
    const ops = rules.opsAt(e.op);
    if (!ops) {
      const what = kernel.symbolize(e.op) ?? hex(e.op);
      rdx.push({ seq: e.seq, function: fn, problem: `${e.callback ?? '?'} got %rdx = ${hex(e.op)} <${what}>, not a registered ftrace_ops` });
      continue;
    }
    if (ops.callback !== e.callback) {
      rdx.push({ seq: e.seq, function: fn, problem: `${e.callback ?? '?'} got %rdx = ${ops.name}, whose callback is ${ops.callback}` });
      continue;
    }
    if (!rules.traced(ops, e.ip)) {
      const gone = ops.hasFlag('ENABLED') ? '' : ' (it is not registered)';
      rdx.push({ seq: e.seq, function: fn, problem: `${ops.name} was called for ${fn}, which its filters exclude${gone}` });
      continue;
    }
    if (e.callback === 'kprobe_regs') {
      regsChecked++;
      const known = rules.known;
      if (e.regs === 0n) regs.push({ seq: e.seq, function: fn, problem: `${ops.name} wants SAVE_REGS but got %rcx = NULL` });
      else if (e.aux0 !== e.ip + siteSize) {
        regs.push({ seq: e.seq, function: fn, problem: `regs->ip = ${hex(e.aux0)}, expected ${hex(e.ip + siteSize)} (the call site + ${siteSize})` });
      } else if (known && known.ip === e.ip && e.aux1 !== known.arg0) {
        regs.push({ seq: e.seq, function: fn, problem: `regs->di = ${hex(e.aux1)}, but the call passed ${hex(known.arg0)}` });
      }
    }
  }
  return { rdx, regs, regsChecked };
}

/** The rules of a kernel at rest: the registered ops, with their current hashes. */
export function currentRules(ftrace: Ftrace, known?: KnownCall): EventRules {
  const byAddr = new Map<bigint, FtraceOps>(ftrace.registered().map((o) => [o.addr, o]));
  return { opsAt: (a) => byAddr.get(a), traced: (o, ip) => o.tracesIp(ip), known };
}

/** What an ops traced at one moment: whether it was registered, and copies of its hashes. */
export interface OpsState {
  registered: boolean;
  filter: ReadonlySet<bigint>;
  notrace: ReadonlySet<bigint>;
}

/** Each ops' state now, by the address of its struct ftrace_ops. */
export function snapshotOps(ops: Iterable<FtraceOps>): Map<bigint, OpsState> {
  return new Map([...ops].map((o) => [o.addr, { registered: o.hasFlag('ENABLED'), filter: new Set(o.filter), notrace: new Set(o.notrace) }]));
}

/** Whether an ops in that state traced the function at ip (hash_contains_ip over the copies). */
export function tracedIn(s: OpsState | undefined, ip: bigint): boolean {
  return !!s && s.registered && (s.filter.size === 0 || s.filter.has(ip)) && !s.notrace.has(ip);
}
