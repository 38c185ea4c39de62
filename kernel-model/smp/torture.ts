// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ftrace torture: every CPU but CPU 0 runs workloads while CPU 0 registers,
 * unregisters and re-filters ops at seeded random points (with the int3
 * protocol, so the other CPUs run between patch phases). Checked from the
 * guest's own records:
 *  - no CPU faults or runs an invalid instruction;
 *  - every invocation got its own ops in %rdx, an ops that was registered and
 *    traced the function (before or after the change under way; after it,
 *    once the change returned);
 *  - no ops is invoked once its unregistration has returned;
 *  - each ops is invoked exactly once per call of a function it traces
 *    (calls counted by hooks on the call sites: the reference model), at
 *    most that often while a change is under way;
 *  - each ops' guest counter equals the invocations recorded for it;
 *  - at the end, with every ops gone, no record has flags and no module
 *    memory is in use.
 */
import type { HookHandle } from '../../emu/index.js';
import { boot } from '../boot.js';
import type { FtraceOps } from '../ftrace/ops.js';
import { MODULE_ALIGN, type KernelConfig } from '../kernel.js';
import { Smp, prng } from './scheduler.js';
import { TraceBuffer } from '../trace/ring-buffer.js';
import { checkEvents, snapshotOps, tracedIn, type OpsState } from '../trace/check-events.js';
import { leftovers, verdict } from './leftovers.js';

export interface TortureOptions {
  cpus: number;
  changes: number;
  seed: number;
  era: KernelConfig['era'];
  /** KernelConfig.hashFree: 'immediate' is the hazard torture must catch. */
  hashFree?: KernelConfig['hashFree'];
}

export interface TortureResult {
  cpus: number;
  changes: number;
  seed: number;
  passed: boolean;
  violations: string[];
  events: number;
  int3Hits: number;
  changesPerSecond: number;
  moduleBytesAfter: number;
  /** Module memory of the trampolines that static ops keep after unregistering. */
  keptTrampolineBytes: number;
}

const PATTERNS = ['vfs_*', '*_read', 'schedule', '*sync*', 'gen_func_1*', 'fsnotify_*', '!vfs_read', '*lock*', 'do_syscall_64', 'gen_func_3*'];

export async function torture(o: TortureOptions): Promise<TortureResult> {
  // The checks read the entries' registers, never their time: no trace clock.
  const { kernel, ftrace } = await boot({ functions: 100, cpus: o.cpus, era: o.era, patching: 'int3', hashFree: o.hashFree ?? 'rcu', traceClock: false });
  const violations: string[] = [];
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: o.seed, quantum: [5, 150], quantaPerSync: 1 });
    for (let c = 1; c < o.cpus; c++) {
      const ubuf = kernel.userBuffer + BigInt(c * 0x1000);
      smp.start(c, c % 2 ? { fn: 'sim_workload_syscalls', args: [20n, ubuf] } : { fn: 'sim_workload_callgraph', args: [5n, BigInt(c)] });
    }
    const pool: FtraceOps[] = [
      ftrace.createOps({ name: 'tracer', callback: 'function_trace' }),
      ftrace.createOps({ name: 'count1', callback: 'counter' }),
      ftrace.createOps({ name: 'count2', callback: 'counter' }),
      ftrace.createOps({ name: 'regs', callback: 'kprobe_regs', flags: ['SAVE_REGS'] }),
      ftrace.createOps({ name: 'dyn', callback: 'counter', dynamic: true }),
      ftrace.createOps({ name: 'kprobe', callback: 'kprobe_regs', flags: ['SAVE_REGS'], dynamic: true }),
    ];
    const byAddr = new Map(pool.map((x) => [x.addr, x]));
    const trace = new TraceBuffer(kernel);
    const perOps = new Map<bigint, bigint>(pool.map((x) => [x.addr, 0n]));
    let events = 0;
    let readUpTo = 0n;

    // The reference model's input: calls of each traced function, counted by
    // hooks on the call sites themselves, apart from anything ftrace does.
    const recs = ftrace.records.all();
    const calls = new Int32Array(recs.length);
    const counters: { cpu: number; hook: HookHandle }[] = [];
    for (let c = 1; c < o.cpus; c++) {
      for (const r of recs) counters.push({ cpu: c, hook: kernel.machine.cpus[c]!.addCodeHook(() => void (calls[r.index] = calls[r.index]! + 1), r.ip, r.ip) });
    }

    /**
     * Checks the events written since the last drain against the states any
     * of which may have been in force when they were written, and each ops'
     * number of invocations against the model: exactly one per call of a
     * function it traces when no change was under way ('quiet'); at most that
     * many, with the state before or after, while one was ('change'), since
     * a site carrying an int3 may skip its callbacks.
     */
    const drain = (states: Map<bigint, OpsState>[], when: string, window: 'quiet' | 'change') => {
      smp.quiesce(); // no CPU is half-way through a traced call or an event
      const { events: evs, lost, pending } = trace.read(readUpTo);
      readUpTo = trace.written;
      if (lost) violations.push(`${lost} events were overwritten before they could be checked (${when})`);
      if (pending) violations.push(`${pending} events were left half-written with every CPU out of ftrace code (${when})`);
      events += evs.length;
      const got = new Map<bigint, number>();
      for (const e of evs) {
        got.set(e.op, (got.get(e.op) ?? 0) + 1);
        if (perOps.has(e.op)) perOps.set(e.op, perOps.get(e.op)! + 1n);
      }
      // Any ops of the pool may have been registered at some point of the window.
      const { rdx, regs } = checkEvents(ftrace, evs, { opsAt: (a) => byAddr.get(a), traced: (x, ip) => states.some((st) => tracedIn(st.get(x.addr), ip)) });
      for (const p of [...rdx, ...regs]) violations.push(`event ${p.seq} (${when}) in ${p.function}: ${p.problem}`);
      for (const x of pool) {
        let want = 0;
        recs.forEach((r, i) => {
          if (calls[i] && states.some((st) => tracedIn(st.get(x.addr), r.ip))) want += calls[i]!;
        });
        const n = got.get(x.addr) ?? 0;
        if (window === 'quiet' ? n !== want : n > want) {
          violations.push(`${x.name} (${when}): invoked ${n} times; the model says ${window === 'quiet' ? '' : 'at most '}${want}`);
        }
      }
      calls.fill(0);
    };
    const rnd = prng(o.seed ^ 0x5eed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const started = performance.now();
    smp.attach();
    smp.run(10);
    drain([snapshotOps(pool)], 'before the first change', 'quiet');
    for (let i = 0; i < o.changes && violations.length === 0 && smp.faults.length === 0; i++) {
      const before = snapshotOps(pool);
      const ops = pick(pool);
      const action = pick(['register', 'unregister', 'filter', 'notrace'] as const);
      const what = `change ${i}: ${action} ${ops.name}`;
      if (action === 'register' && !ops.hasFlag('ENABLED')) ftrace.register_ftrace_function(ops);
      else if (action === 'unregister' && ops.hasFlag('ENABLED')) ftrace.unregister_ftrace_function(ops);
      else if (action === 'filter') ftrace.ftrace_set_filter(ops, [pick(PATTERNS)], rnd() < 0.5);
      else if (action === 'notrace') ftrace.ftrace_set_notrace(ops, [pick(PATTERNS)], rnd() < 0.7);
      const after = snapshotOps(pool);
      drain([before, after], `during ${what}`, 'change');
      smp.run(Math.floor(rnd() * 4));
      drain([after], `after ${what}`, 'quiet');
      // The next change must find CPUs anywhere, inside the list walk too:
      // the drain above left them all outside ftrace code.
      smp.run(1 + Math.floor(rnd() * 3));
    }
    // What the CPUs did since the last drain (some may be half-way through a callback).
    drain([snapshotOps(pool)], 'after the last change', 'change');
    smp.detach();
    for (const { cpu, hook } of counters) kernel.machine.cpus[cpu]!.removeHook(hook);
    const seconds = (performance.now() - started) / 1000;
    for (const f of smp.faults) violations.push(`CPU ${f.cpu} faulted: ${f.fault.message}`);

    // The guest's counters agree with the invocations recorded for each ops.
    for (const x of pool) {
      if (x.invocations !== perOps.get(x.addr)) violations.push(`${x.name}: the guest counted ${x.invocations} invocations, the trace recorded ${perOps.get(x.addr)}`);
    }
    // Everything back: no flags, and no module memory but the trampolines
    // static ops keep for their next registration (the kernel frees only
    // dynamic ops' trampolines).
    for (const x of pool) if (x.hasFlag('ENABLED')) ftrace.unregister_ftrace_function(x);
    for (const x of pool) if (x.hasFlag('DYNAMIC') && x.trampoline !== 0n) violations.push(`${x.name} is dynamic and unregistered but still has its trampoline`);
    // Static ops keep their trampolines after unregistering: that much module memory stays in use.
    const keptTrampolineBytes = pool.reduce((n, x) => n + (x.hasFlag('DYNAMIC') || x.trampoline === 0n ? 0 : Math.ceil(x.trampolineSize / MODULE_ALIGN) * MODULE_ALIGN), 0);
    violations.push(...leftovers(ftrace, keptTrampolineBytes));
    const moduleBytesAfter = kernel.moduleSpace?.bytesInUse ?? 0;
    return {
      ...verdict(o, violations),
      events,
      int3Hits: ftrace.arch.int3Hits,
      changesPerSecond: o.changes / Math.max(seconds, 1e-9),
      moduleBytesAfter,
      keptTrampolineBytes,
    };
  } finally {
    kernel.close();
  }
}
