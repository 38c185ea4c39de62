// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The function graph tracer's control plane, as v3.18 has it
 * (register_ftrace_graph / unregister_ftrace_graph in kernel/trace/ftrace.c,
 * set_graph_function, set_graph_notrace and max_graph_depth of
 * kernel/trace/trace_functions_graph.c): the graph tracer is one ftrace_ops
 * whose callback is ftrace_stub; what traces is the shared ftrace_graph_call
 * at the end of every caller and trampoline, switched to ftrace_graph_caller
 * while it is registered. Its data plane is kernel-model/x86/fgraph.S.
 */
import type { GuestMemory } from '../../emu/index.js';
import type { DataLayout } from '../allocator.js';
import type { Kernel } from '../kernel.js';
import type { Ftrace, FtraceResult } from './core.js';
import { eraRules } from './era.js';
import { filterParseRegex, globMatches } from './glob.js';
import { writeHashPointer, type FtraceOps } from './ops.js';
import { OPS } from '../abi.js';

const GRAPH_DATA = ['fgraph_ops', 'ftrace_graph_entry', '__ftrace_graph_entry', 'ftrace_graph_return', 'ftrace_graph_hash', 'ftrace_graph_notrace_hash', 'fgraph_max_depth', 'kill_ftrace_graph'] as const;

export function placeGraphData(l: DataLayout): void {
  for (const n of GRAPH_DATA) l.place(n, 8);
}

/** The graph hooks point at their stubs until a graph tracer registers. */
export function initGraphData(m: GuestMemory, sym: (name: string) => bigint): void {
  m.writeU64(sym('ftrace_graph_entry'), sym('ftrace_graph_entry_stub'));
  m.writeU64(sym('__ftrace_graph_entry'), sym('ftrace_graph_entry_stub'));
  m.writeU64(sym('ftrace_graph_return'), sym('ftrace_stub'));
}

export interface GraphSettings {
  /** set_graph_function: functions a graph may start at (empty: any). */
  functions?: readonly string[];
  /** set_graph_notrace: functions whose subtree is left out. */
  notrace?: readonly string[];
  /** max_graph_depth (0: unlimited). */
  maxDepth?: number;
}

const OK: FtraceResult = { ok: true };

export class FtraceGraph {
  /** ftrace_graph_active. */
  active = 0;
  /** The registered graph ops (v3.18's graph_ops). */
  ops: FtraceOps | undefined;
  functions = new Set<bigint>();
  notrace = new Set<bigint>();
  private readonly kernel: Kernel;

  constructor(private readonly ftrace: Ftrace) {
    this.kernel = ftrace.kernel;
    ftrace.opsListChanged.push(() => this.update_function_graph_func());
  }

  /**
   * v3.18: every caller and trampoline ends in the shared ftrace_graph_call,
   * so the entry hook tests the graph ops' hashes when other ops are
   * registered. Modern: the graph tracer is an ops with its own callback
   * (ftrace_graph_func) and, static, its own trampoline.
   */
  private get modern(): boolean {
    return !eraRules(this.kernel.config.era).graphCall;
  }

  private sym(n: string): bigint {
    return this.kernel.sym(n);
  }

  private put(name: string, v: bigint): void {
    this.kernel.memory.writeU64(this.sym(name), v);
  }

  /**
   * register_ftrace_graph(trace_graph_return, trace_graph_entry): give every
   * task a return stack, point the hooks at the tracer, then register the ops
   * with FTRACE_START_FUNC_RET.
   */
  register(ops: FtraceOps): FtraceResult {
    if (this.active > 0) return { ok: false, errno: 'EBUSY', code: -16, message: `the graph tracer is already in use by ${this.ops?.name ?? '?'}` };
    this.active++;
    for (const [, t] of this.kernel.tasks.all()) this.kernel.tasks.allocRetStack(t); // start_graph_tracing()
    this.ops = ops;
    if (this.modern) {
      // The modern graph tracer is an ops whose callback hooks the return (it needs regs->sp).
      this.kernel.memory.writeU64(ops.addr + BigInt(OPS.FUNC), this.sym('ftrace_graph_func'));
      ops.setFlag('SAVE_REGS', true);
    }
    this.put('fgraph_ops', ops.addr);
    this.put('kill_ftrace_graph', 0n);
    this.put('ftrace_graph_return', this.sym('trace_graph_return'));
    this.put('__ftrace_graph_entry', this.sym('trace_graph_entry'));
    this.put('ftrace_graph_entry', this.sym(this.modern ? 'trace_graph_entry' : 'ftrace_graph_entry_test'));
    const r = this.ftrace.register_ftrace_graph_ops(ops);
    if (!r.ok) this.reset();
    return r;
  }

  /** unregister_ftrace_graph(): the hooks back to their stubs; return stacks stay with their tasks. */
  unregister(ops: FtraceOps): FtraceResult {
    if (this.ops !== ops) return { ok: false, errno: 'EINVAL', code: -22, message: `${ops.name} is not the registered graph tracer` };
    this.active--;
    this.put('ftrace_graph_return', this.sym('ftrace_stub'));
    this.put('ftrace_graph_entry', this.sym('ftrace_graph_entry_stub'));
    this.put('__ftrace_graph_entry', this.sym('ftrace_graph_entry_stub'));
    const r = this.ftrace.unregister_ftrace_graph_ops(ops);
    this.ops = undefined;
    return r;
  }

  private reset(): void {
    this.active = 0;
    this.ops = undefined;
    this.put('ftrace_graph_return', this.sym('ftrace_stub'));
    this.put('ftrace_graph_entry', this.sym('ftrace_graph_entry_stub'));
    this.put('__ftrace_graph_entry', this.sym('ftrace_graph_entry_stub'));
  }

  /**
   * update_function_graph_func(): when the graph ops is the only ops, every
   * enabled site is one it traces, so the entry hook needs no test of its
   * hashes; otherwise ftrace_graph_entry_test asks them first.
   */
  private update_function_graph_func(): void {
    // Modern: the graph ops' callback only runs for functions it traces.
    if (!this.ops || this.active === 0 || this.modern) return;
    const list = this.ftrace.registered();
    const alone = list.length === 0 || (list.length === 1 && list[0] === this.ops);
    this.put('ftrace_graph_entry', this.sym(alone ? 'trace_graph_entry' : 'ftrace_graph_entry_test'));
  }

  private match(patterns: readonly string[]): Set<bigint> | string {
    const out = new Set<bigint>();
    for (const p of patterns) {
      const g = filterParseRegex(p);
      let found = 0;
      for (const rec of this.ftrace.records.all()) {
        if (!globMatches(g, this.ftrace.recordName(rec))) continue;
        found++;
        if (g.negate) out.delete(rec.ip);
        else out.add(rec.ip);
      }
      if (found === 0) return `${p} matches no function in available_filter_functions`;
    }
    return out;
  }

  /** Writes set_graph_function, set_graph_notrace and max_graph_depth into the guest. */
  configure(s: GraphSettings): FtraceResult {
    if (s.functions) {
      const f = this.match(s.functions);
      if (typeof f === 'string') return { ok: false, errno: 'EINVAL', code: -22, message: f };
      this.functions = f;
      writeHashPointer(this.kernel, this.sym('ftrace_graph_hash'), f);
    }
    if (s.notrace) {
      const n = this.match(s.notrace);
      if (typeof n === 'string') return { ok: false, errno: 'EINVAL', code: -22, message: n };
      this.notrace = n;
      writeHashPointer(this.kernel, this.sym('ftrace_graph_notrace_hash'), n);
    }
    if (s.maxDepth !== undefined) {
      if (!Number.isInteger(s.maxDepth) || s.maxDepth < 0) return { ok: false, errno: 'EINVAL', code: -22, message: `max_graph_depth must be a whole number, not ${s.maxDepth}` };
      this.put('fgraph_max_depth', BigInt(s.maxDepth));
    }
    return OK;
  }

  get maxDepth(): number {
    return Number(this.kernel.memory.readU64(this.sym('fgraph_max_depth')));
  }

  /** Whether the graph tracer gave up (a return with an empty return stack). */
  get dead(): boolean {
    return this.kernel.memory.readU64(this.sym('kill_ftrace_graph')) !== 0n;
  }
}
