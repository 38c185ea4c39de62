// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Torture for the function graph tracer: CPU 0 turns the graph tracer (and
 * other ops beside it) on and off and changes its filter while the other
 * CPUs run tasks, two per CPU, preempted anywhere (CONFIG_PREEMPT), so that
 * tasks are switched out deep inside traced functions with return addresses
 * hooked, inside trampolines, inside return_to_handler. Checked from the
 * guest:
 *  - no CPU faults: no return is lost (a lost one ends in a wrong return or
 *    in ftrace_graph_panic's ud2), none goes into a freed trampoline;
 *  - the graph tracer never found a return stack empty (kill_ftrace_graph);
 *  - every event came from an ops of the pool with its own callback;
 *  - every recorded return went to the address its entry replaced, right
 *    after a call of the function (per task, from the events; which caller
 *    is not checked: a caller entered while the tracer was off has no entry);
 *  - at the end, with every ops gone and every task out of ftrace code, each
 *    task's ret_stack matches its stack: one entry per live return address
 *    replaced by return_to_handler, each entry's slot holding exactly that;
 *    a task that has returned has an empty ret_stack;
 *  - no record keeps flags, no module memory stays in use, no warning.
 * Dynamic ops, with the era's rule for their trampolines under
 * CONFIG_PREEMPT: none before v4.12, freed after RCU-tasks in a v6 kernel;
 * the graph ops is one of them. Filters stay empty: the
 * model frees a replaced guest hash at once, which a task preempted in the
 * middle of a lookup would read (the kernel defers that free with RCU), so
 * the changes here are registrations and max_graph_depth.
 */
import { hex } from '../../emu/index.js';
import { boot } from '../boot.js';
import type { FtraceOps } from '../ftrace/ops.js';
import type { KernelConfig } from '../kernel.js';
import { checkEvents } from '../trace/check-events.js';
import { TraceBuffer } from '../trace/ring-buffer.js';
import { Smp, prng, type Task } from './scheduler.js';
import { leftovers, verdict } from './leftovers.js';
import { buildForest, checkReturns, type CallNode } from '../trace/graph-tree.js';

function countReturned(nodes: readonly CallNode[]): number {
  return nodes.reduce((n, c) => n + (c.returnedTo !== undefined ? 1 : 0) + countReturned(c.children), 0);
}

export interface GraphTortureOptions {
  cpus: number;
  changes: number;
  seed: number;
  era: KernelConfig['era'];
}

export interface GraphTortureResult {
  cpus: number;
  changes: number;
  seed: number;
  passed: boolean;
  violations: string[];
  /** Graph entry and return events read, and other callbacks' events. */
  graphEntries: number;
  graphReturns: number;
  otherEvents: number;
  /** Recorded returns checked against their entries (right caller, right address). */
  returnsChecked: number;
  /** Return addresses hooked on task stacks when the graph tracer was turned off (summed). */
  hookedAtUnregister: number;
  tasks: number;
  int3Hits: number;
  changesPerSecond: number;
}

const DEPTHS = [0, 1, 2, 3, 5, 8, 12];

export async function graphTorture(o: GraphTortureOptions): Promise<GraphTortureResult> {
  const { kernel, ftrace } = await boot({
    functions: 60,
    cpus: o.cpus,
    era: o.era,
    patching: 'int3',
    preempt: true,
    // Entries and returns are paired by task and depth, never by time.
    traceClock: false,
  });
  const violations: string[] = [];
  try {
    const smp = new Smp({ kernel, ftrace }, { seed: o.seed, quantum: [5, 150], quantaPerSync: 1, preemptChance: 0.5 });
    const tasks: Task[] = [];
    for (let c = 1; c < o.cpus; c++) {
      tasks.push(smp.start(c, { fn: 'sim_workload_callgraph', args: [3n, BigInt(c)] }));
      tasks.push(smp.start(c, { fn: 'sim_workload_syscalls', args: [5n, kernel.userBuffer + BigInt(c * 0x1000)] }));
    }
    const graph = ftrace.createOps({ name: 'graph', callback: 'function_graph', dynamic: true });
    const pool: FtraceOps[] = [
      graph,
      ftrace.createOps({ name: 'count', callback: 'counter', dynamic: true }),
      ftrace.createOps({ name: 'kprobe', callback: 'kprobe_regs', flags: ['SAVE_REGS'], dynamic: true }),
    ];
    const byAddr = new Map(pool.map((x) => [x.addr, x]));
    const g = ftrace.graph;
    const set = g.configure({ notrace: ['fsnotify_access'], maxDepth: 12 });
    if (!set.ok) throw new Error(set.message);
    const rth = kernel.sym('return_to_handler');
    const trace = new TraceBuffer(kernel);
    let readUpTo = 0n;
    let graphEntries = 0;
    let graphReturns = 0;
    let otherEvents = 0;
    let hookedAtUnregister = 0;
    let returnsChecked = 0;

    const hookedSlots = (t: Task): bigint[] => {
      const w = smp.where(t);
      if (!w) return [];
      const out: bigint[] = [];
      for (let a = w.rsp; a < t.stackTop; a += 8n) if (kernel.memory.readU64(a) === rth) out.push(a);
      return out;
    };
    const drain = (when: string) => {
      smp.quiesce();
      const { events } = trace.read(readUpTo);
      readUpTo = trace.written;
      for (const e of events) {
        if (e.graph === 'entry') graphEntries++;
        else if (e.graph === 'return') graphReturns++;
        else otherEvents++;
      }
      // Which ops traced what changed under way: only the ops and its callback are checked.
      const { rdx } = checkEvents(ftrace, events, { opsAt: (a) => byAddr.get(a), traced: () => true });
      for (const p of rdx) violations.push(`event ${p.seq} (${when}) in ${p.function}: ${p.problem}`);
      // Every return recorded in this window went where its entry's return address pointed, per task.
      const forest = buildForest(kernel, events);
      for (const p of checkReturns(kernel, forest, { nesting: false })) violations.push(`${when}: ${p}`);
      returnsChecked += countReturned(forest.roots);
    };

    const rnd = prng(o.seed ^ 0x6a4f);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const started = performance.now();
    smp.attach();
    smp.run(10);
    for (let i = 0; i < o.changes && violations.length === 0 && smp.faults.length === 0; i++) {
      const ops = rnd() < 0.6 ? graph : pick(pool);
      const action = pick(['toggle', 'toggle', 'depth'] as const);
      const what = `change ${i}: ${action} ${ops.name}`;
      if (action === 'toggle') {
        const on = ops.hasFlag('ENABLED');
        if (ops === graph) {
          if (on) hookedAtUnregister += tasks.reduce((n, t) => n + hookedSlots(t).length, 0);
          const r = on ? g.unregister(graph) : g.register(graph);
          if (!r.ok) violations.push(`${what}: ${r.message}`);
        } else if (on) ftrace.unregister_ftrace_function(ops);
        else ftrace.register_ftrace_function(ops);
      } else {
        const r = g.configure({ maxDepth: pick(DEPTHS) });
        if (!r.ok) violations.push(`${what}: ${r.message}`);
      }
      smp.run(Math.floor(rnd() * 6));
      if (i % 25 === 24) drain(`after ${what}`);
    }
    for (const x of pool) if (x.hasFlag('ENABLED')) (x === graph ? g.unregister(x) : ftrace.unregister_ftrace_function(x));
    drain('at the end');
    // Let every task leave ftrace code (a preempted one too) before comparing stacks.
    const inFtrace = () => tasks.some((t) => {
      const w = smp.where(t);
      return !!w && ftrace.inFtraceCode(w.rip);
    });
    for (let guard = 0; inFtrace() && guard < 20_000 && smp.faults.length === 0; guard++) smp.run(1);
    smp.detach();
    const seconds = (performance.now() - started) / 1000;

    for (const f of smp.faults) violations.push(`CPU ${f.cpu} (task ${f.task}) faulted: ${f.fault.message}`);
    if (g.dead) violations.push('the graph tracer found a return stack empty on a return (kill_ftrace_graph)');
    if (inFtrace()) violations.push('a task never left ftrace code');
    for (const t of tasks) {
      const entries = kernel.tasks.retStack(t.taskStruct);
      const slots = hookedSlots(t);
      const who = `task ${t.pid} (${t.spec.fn} on CPU ${t.cpu})`;
      if (!smp.where(t) && entries.length) violations.push(`${who} returned with ${entries.length} entries left on its ret_stack`);
      if (entries.length !== slots.length) violations.push(`${who}: ret_stack holds ${entries.length} entries, its stack ${slots.length} hooked return addresses`);
      for (const e of entries) {
        if (kernel.memory.readU64(e.retp) !== rth) violations.push(`${who}: the slot ${hex(e.retp)} of ${kernel.symbolize(e.func)}'s return holds ${hex(kernel.memory.readU64(e.retp))}, not return_to_handler`);
      }
    }
    violations.push(...leftovers(ftrace));
    if (graphEntries === 0) violations.push('the graph tracer recorded nothing: the run proves nothing');
    return {
      ...verdict(o, violations),
      graphEntries,
      graphReturns,
      otherEvents,
      hookedAtUnregister,
      returnsChecked,
      tasks: tasks.length,
      int3Hits: ftrace.arch.int3Hits,
      changesPerSecond: o.changes / Math.max(seconds, 1e-9),
    };
  } finally {
    kernel.close();
  }
}
