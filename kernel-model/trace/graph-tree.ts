// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the function_graph tracer's events say: the call trees they describe
 * (entry and return events paired per CPU, as the trace file nests them),
 * whether every traced return went back where its call came from, and the
 * static call graph of the model kernel (the direct calls in each
 * function's own bytes) to compare a recorded tree with.
 */
import { disassemble } from '../../asm/disasm.js';
import { decodeBranch } from '../../asm/encoding.js';
import { hex } from '../../emu/index.js';
import type { Kernel } from '../kernel.js';
import { graphDepth, graphPid, type TraceEvent } from './ring-buffer.js';

export interface CallNode {
  func: string;
  ip: bigint;
  depth: number;
  cpu: number;
  pid: number;
  children: CallNode[];
  /** Guest instructions from entry to return (undefined while it has not returned). */
  duration: bigint | undefined;
  /** The return address the entry saw, and the one the return went to. */
  ret: bigint;
  returnedTo: bigint | undefined;
  entrySeq: bigint;
}

export interface GraphForest {
  /** Completed and open top-level calls, of every task, in order. */
  roots: CallNode[];
  /** Returns without an entry in the events read (entries lost or written before the read). */
  orphanReturns: TraceEvent[];
}

/** Nests the graph events into call trees, per task (a task may move between CPUs only when switched out). */
export function buildForest(kernel: Kernel, events: readonly TraceEvent[]): GraphForest {
  const name = (a: bigint) => kernel.symbols.get(kernel.symbols.format(a, { short: true })?.split('+')[0] ?? '')?.name ?? hex(a);
  const stacks = new Map<number, CallNode[]>();
  const roots: CallNode[] = [];
  const orphanReturns: TraceEvent[] = [];
  for (const e of events) {
    if (e.callback !== 'function_graph' || !e.graph) continue;
    const pid = graphPid(e);
    const st = stacks.get(pid) ?? [];
    stacks.set(pid, st);
    const depth = graphDepth(e);
    if (e.graph === 'entry') {
      // An entry shallower than the open calls means their returns were not recorded.
      while (st.length > 0 && st[st.length - 1]!.depth >= depth) st.pop();
      const node: CallNode = { func: name(e.ip), ip: e.ip, depth, cpu: e.cpu, pid, children: [], duration: undefined, ret: e.parentIp, returnedTo: undefined, entrySeq: e.seq };
      const parent = st[st.length - 1];
      if (parent) parent.children.push(node);
      else roots.push(node);
      st.push(node);
    } else {
      while (st.length > 0 && st[st.length - 1]!.depth > depth) st.pop();
      const top = st[st.length - 1];
      if (!top || top.depth !== depth || top.ip !== e.ip) {
        orphanReturns.push(e);
        continue;
      }
      st.pop();
      top.duration = e.aux1 - e.aux0;
      top.returnedTo = e.parentIp;
    }
  }
  return { roots, orphanReturns };
}

/** `f > [a, b > [c]]`: a tree in the scenario notation. */
export function formatTree(n: CallNode | StaticNode): string {
  const kids = n.children.map(formatTree);
  if (kids.length === 0) return n.func;
  return kids.length === 1 && n.children[0]!.children.length === 0 ? `${n.func} > ${kids[0]}` : `${n.func} > [${kids.join(', ')}]`;
}

export interface StaticNode {
  func: string;
  children: StaticNode[];
}

/** Parses `f > [a, b > [c]]` (also `f > a`); throws a message on bad input. */
export function parseTree(text: string): StaticNode {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const ident = (): string => {
    ws();
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i));
    if (!m) throw new Error(`expected a function name at column ${i + 1} of '${text}'`);
    i += m[0].length;
    return m[0];
  };
  const node = (): StaticNode => {
    const func = ident();
    ws();
    if (text[i] !== '>') return { func, children: [] };
    i++;
    ws();
    if (text[i] !== '[') return { func, children: [node()] };
    i++;
    const children: StaticNode[] = [];
    for (;;) {
      children.push(node());
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        break;
      }
      throw new Error(`expected ',' or ']' at column ${i + 1} of '${text}'`);
    }
    return { func, children };
  };
  const t = node();
  ws();
  if (i !== text.length) throw new Error(`unexpected '${text.slice(i)}' in '${text}'`);
  return t;
}

/** The first difference between a recorded tree and an expected one, or undefined. */
export function treeDifference(got: CallNode | StaticNode, want: StaticNode, path = ''): string | undefined {
  const here = path ? `${path} > ${want.func}` : want.func;
  if (got.func !== want.func) return `at ${path || 'the root'}: called ${got.func}, expected ${want.func}`;
  const a = got.children.map((c) => c.func).join(', ');
  const b = want.children.map((c) => c.func).join(', ');
  if (a !== b) return `${here} called [${a}], expected [${b}]`;
  for (let k = 0; k < want.children.length; k++) {
    const d = treeDifference(got.children[k]!, want.children[k]!, here);
    if (d) return d;
  }
  return undefined;
}

/** The last call of `func` anywhere in the forest that has returned. */
export function lastCallOf(forest: GraphForest, func: string): CallNode | undefined {
  let found: CallNode | undefined;
  const walk = (n: CallNode) => {
    if (n.func === func && n.returnedTo !== undefined && (!found || n.entrySeq > found.entrySeq)) found = n;
    n.children.forEach(walk);
  };
  forest.roots.forEach(walk);
  return found;
}

/**
 * The static call graph below `func`: the direct calls in its bytes (and
 * theirs), keeping the functions that have a call site, cut at `maxDepth`
 * levels below the root (0: no cut).
 */
export function staticCallTree(kernel: Kernel, func: string, isTraced: (func: string) => boolean, maxDepth = 0, depth = 0): StaticNode {
  const node: StaticNode = { func, children: [] };
  if (maxDepth > 0 && depth + 1 >= maxDepth) return node;
  const s = kernel.symbols.get(func);
  if (!s || depth > 64) return node;
  for (const insn of disassemble(kernel.memory.read(s.address, s.size), s.address)) {
    if (!insn.mnemonic.startsWith('call') || insn.target === undefined) continue;
    const callee = kernel.symbols.format(insn.target, { short: true });
    if (callee && isTraced(callee)) node.children.push(staticCallTree(kernel, callee, isTraced, maxDepth, depth + 1));
  }
  return node;
}

/**
 * Whether the instruction before `ret` is a call that may reach the function of call site `ip`:
 * `call func` (e8 rel32), or an indirect call (ff /2, with an optional REX
 * prefix) that ends exactly at `ret`, as a dispatch through a table makes.
 */
function followsCallOf(kernel: Kernel, ret: bigint, ip: bigint): boolean {
  // A call reaches the function's start; its call site (ip) is there with fentry, a few bytes in with mcount.
  const func = kernel.symbols.lookup(ip)?.symbol.address ?? ip;
  const br = decodeBranch(ret - 5n, kernel.memory.read(ret - 5n, 5));
  if (br) return br.kind === 'call' && br.target === func;
  const before = kernel.memory.read(ret - 8n, 8);
  for (let len = 2; len <= 7; len++) {
    const at = 8 - len;
    if (before[at] === 0xff && ((before[at + 1]! >> 3) & 7) === 2) return true;
    if (len >= 3 && (before[at]! & 0xf0) === 0x40 && before[at + 1] === 0xff && ((before[at + 2]! >> 3) & 7) === 2) return true;
  }
  return false;
}

/**
 * Every traced return went back to its caller: the return address the
 * return handed back is the one the entry replaced, and it follows a call
 * of the traced function in the caller (decoded from the caller's bytes; an
 * indirect call is taken as one).
 * Nested calls must return into their parent's function. (A call the host
 * made returns to the host's sentinel, which no call instruction precedes.)
 */
export function checkReturns(kernel: Kernel, forest: GraphForest, opts: { nesting?: boolean } = {}): string[] {
  // A tracer turned off and on while a task is inside hooked calls leaves callers unrecorded: nesting is then not checked.
  const nesting = opts.nesting ?? true;
  const problems: string[] = [];
  const sentinel = kernel.machine.sentinel;
  const fn = (a: bigint) => kernel.symbols.format(a, { short: true })?.split('+')[0];
  const check = (n: CallNode, parent: CallNode | undefined) => {
    if (n.returnedTo !== undefined) {
      if (n.returnedTo !== n.ret) problems.push(`${n.func} (event ${n.entrySeq}) returned to ${kernel.symbolize(n.returnedTo) ?? hex(n.returnedTo)}, its call came from ${kernel.symbolize(n.ret) ?? hex(n.ret)}`);
      else if (n.ret !== sentinel) {
        if (!followsCallOf(kernel, n.ret, n.ip)) problems.push(`${n.func} returned to ${kernel.symbolize(n.ret) ?? hex(n.ret)}, which does not follow a call of ${n.func}`);
        else if (nesting && parent && fn(n.ret) !== parent.func) problems.push(`${n.func} returned into ${fn(n.ret)}, not into its caller ${parent.func}`);
      }
    }
    n.children.forEach((c) => check(c, n));
  };
  forest.roots.forEach((r) => check(r, undefined));
  return problems;
}
