// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Explaining one traced function, byte by byte: its call site as compiled,
 * after boot and now; the trampoline it calls, line by line; and the path one
 * call takes to each callback, with the registers each callback received.
 */
import { disassemble, formatInsnText, ripTarget, type Insn } from '../../asm/disasm.js';
import { hex, hexBytes, type HookHandle } from '../../emu/index.js';
import { CALLBACK_FUNC, type CallbackName } from '../abi.js';
import { siteTargetLabel, type Ftrace } from '../ftrace/core.js';
import { eraRules } from '../ftrace/era.js';
import type { FtraceOps } from '../ftrace/ops.js';
import type { DynFtrace } from '../ftrace/records.js';
import type { Kernel } from '../kernel.js';
import { defaultArgs } from '../workloads/workloads.js';

export interface SiteStage {
  stage: 'as compiled' | 'after boot (ftrace_init)' | 'now';
  bytes: string;
  instruction: string;
}

export interface TrampolineLine {
  offset: number;
  address: bigint;
  bytes: string;
  instruction: string;
  note: string;
}

export interface CallbackVisit {
  callback: string;
  rdi: bigint;
  rsi: bigint;
  rdx: bigint;
  rcx: bigint;
  /** The ops %rdx points at, if it is one. */
  ops: string | null;
  /** Whether that ops uses this callback and traces the function: %rdx is its own ops. */
  ownOps: boolean;
}

export interface Explanation {
  function: string;
  site: bigint;
  target: string;
  stages: SiteStage[];
  trampoline: { ops: string; address: bigint; size: number; copiedFrom: string; lines: TrampolineLine[] } | null;
  path: string[];
  callbacks: CallbackVisit[];
  /** With the graph tracer on: the stack slot whose return address it replaced. */
  graph: GraphVisit | null;
  /** `func+0xoff` of an address, for printing. */
  symbolize: (a: bigint) => string | undefined;
}

function oneInsn(kernel: Kernel, bytes: Uint8Array, at: bigint): string {
  const [i] = disassemble(bytes, at, 1);
  return i ? formatInsnText(i, (a) => kernel.symbolize(a)) : '(undecodable)';
}

function annotateTrampoline(kernel: Kernel, ftrace: Ftrace, ops: FtraceOps): NonNullable<Explanation['trampoline']> {
  const { caller, start, size, tail, opOffset: opOff, callOffset: callOff, jmpOffset, slotOffset: slotOff } = ftrace.arch.trampolineLayout(ops.hasFlag('SAVE_REGS'));
  const t = ops.trampoline;
  const code = kernel.memory.read(t, slotOff);
  const sym = (a: bigint) => kernel.symbolize(a);
  const lines: TrampolineLine[] = disassemble(code, t).map((i: Insn) => {
    const offset = Number(i.address - t);
    let note = `copied from ${caller}+0x${offset.toString(16)}`;
    if (offset === opOff) {
      const [orig] = disassemble(kernel.memory.read(start + BigInt(opOff), 7), start + BigInt(opOff), 1);
      const was = orig ? ripTarget(orig) : undefined;
      note = `48 8b 15 kept; disp32 rewritten: was ${was !== undefined ? `${hex(was)} <${kernel.symbols.format(was, { short: true }) ?? '?'}>` : '?'}, now the ops slot at +0x${slotOff.toString(16)}`;
    } else if (offset === callOff) note = `the copied ftrace_call, patched to call ${ops.name}'s func directly`;
    else if (offset === jmpOffset) note = "ftrace_regs_caller's direct-call jnz, made a 2-byte NOP: a trampoline serves no direct call";
    else if (offset === size) note = tail === 'jmp' ? 'appended by create_trampoline: jmp ftrace_return' : 'appended by create_trampoline: its own RET, back to the traced function';
    return { offset, address: i.address, bytes: hexBytes(i.bytes), instruction: formatInsnText(i, sym), note };
  });
  const slot = kernel.memory.readU64(t + BigInt(slotOff));
  lines.push({
    offset: slotOff,
    address: t + BigInt(slotOff),
    bytes: hexBytes(kernel.memory.read(t + BigInt(slotOff), 8)),
    instruction: `.quad ${hex(slot)}`,
    note: `the ops pointer (&${ops.name}), in place of function_trace_op`,
  });
  return { ops: ops.name, address: t, size: ops.trampolineSize, copiedFrom: caller, lines };
}

/** Runs `fn` once with hooks that record the path from its call site and each callback's registers. */
function tracePath(kernel: Kernel, ftrace: Ftrace, fn: string, args: readonly bigint[], site: bigint): { path: string[]; callbacks: CallbackVisit[]; graph: GraphVisit | null } {
  const cpu = kernel.machine.cpu;
  const path: string[] = [];
  const callbacks: CallbackVisit[] = [];
  let armed = false;
  const visit = (a: bigint) => {
    if (!armed) return;
    const name = kernel.symbols.format(a, { short: true }) ?? hex(a);
    if (path[path.length - 1] !== name) path.push(name);
  };
  const byAddr = new Map(ftrace.allOps().map((o) => [o.addr, o]));
  const graph: GraphVisit[] = [];
  const hooks = [
    cpu.addCodeHook(() => {
      armed = true;
      path.push(`${fn} call site`);
    }, site, site),
    cpu.addCodeHook(() => {
      armed = false;
    }, site + 5n, site + 5n),
    ...ftrace.codeRanges.map(([a, b]) => cpu.addCodeHook((x) => visit(x), a, b)),
    ...graphHooks(kernel, () => armed, graph),
    // ftrace_stub is no callback of its own (the graph ops' func, and where ftrace_graph_call jumps when off).
    ...(Object.entries(CALLBACK_FUNC) as [CallbackName, string][]).filter(([, f]) => f !== 'ftrace_stub').map(([cb, f]) =>
      cpu.addCodeHook(() => {
        if (!armed) return;
        const rdx = cpu.readReg('rdx');
        const ops = byAddr.get(rdx);
        const rdi = cpu.readReg('rdi');
        callbacks.push({
          callback: f,
          rdi,
          rsi: cpu.readReg('rsi'),
          rdx,
          rcx: cpu.readReg('rcx'),
          ops: ops?.name ?? null,
          ownOps: !!ops && ops.callback === cb && ops.hasFlag('ENABLED') && ops.tracesIp(rdi),
        });
      }, kernel.sym(f), kernel.sym(f)),
    ),
  ];
  try {
    kernel.call(fn, args);
  } finally {
    for (const h of hooks) cpu.removeHook(h);
  }
  path.push(`${fn}+0x5 (the function runs on)`);
  return { path, callbacks, graph: graph[0] ?? null };
}

/**
 * The return hook of the graph tracer, seen from the stack: the slot
 * prepare_ftrace_return() was handed (&the return address), what it held
 * before and after, and where the function really returned once
 * return_to_handler had run.
 */
export interface GraphVisit {
  slot: bigint;
  before: bigint;
  after: bigint;
  /** What ftrace_return_to_handler() handed back: where the function then returned. */
  returnedTo: bigint | undefined;
  /** The task's return stack depth while the function ran. */
  depth: number;
}

function graphHooks(kernel: Kernel, armed: () => boolean, out: GraphVisit[]): HookHandle[] {
  const cpu = kernel.machine.cpu;
  const pfr = kernel.sym('prepare_ftrace_return');
  // What calls prepare_ftrace_return: v3.x's ftrace_graph_caller, or the graph ops' ftrace_graph_func.
  const caller = kernel.symbols.get(eraRules(kernel.config.era).graphCall ? 'ftrace_graph_caller' : 'ftrace_graph_func')!;
  let open: GraphVisit | undefined;
  let waitingAfter = false;
  // The instruction after ftrace_return_to_handler's call in return_to_handler: %rax is the real return address.
  const rth = kernel.symbols.get('return_to_handler')!;
  const afterCall = disassemble(kernel.memory.read(rth.address, rth.size), rth.address).find((_i, k, all) => k > 0 && all[k - 1]!.mnemonic.startsWith('call'));
  return [
    cpu.addCodeHook(() => {
      if (!armed() || open) return;
      const slot = cpu.readReg('rdi');
      open = { slot, before: kernel.memory.readU64(slot), after: 0n, returnedTo: undefined, depth: -1 };
      waitingAfter = true;
    }, pfr, pfr),
    cpu.addCodeHook(() => {
      if (!open || !waitingAfter) return;
      waitingAfter = false;
      open.after = kernel.memory.readU64(open.slot);
      open.depth = kernel.tasks.currRetStack(kernel.tasks.current(0));
      out.push(open);
    }, caller.address, caller.address + BigInt(caller.size) - 1n),
    ...(afterCall
      ? [
          cpu.addCodeHook(() => {
            const v = out[0];
            if (v && v.returnedTo === undefined && kernel.tasks.currRetStack(kernel.tasks.current(0)) === v.depth - 1) v.returnedTo = cpu.readReg('rax');
          }, afterCall.address, afterCall.address),
        ]
      : []),
  ];
}

/** A call site's bytes as compiled, as ftrace_init() left them, and now, each with its instruction. */
export function siteStages(kernel: Kernel, ftrace: Ftrace, rec: DynFtrace): SiteStage[] {
  const site = rec.ip;
  const compiled = kernel.program.bytes.subarray(Number(site - kernel.program.base), Number(site - kernel.program.base) + 5);
  const afterBoot = ftrace.siteAfterBoot(rec);
  const now = kernel.memory.read(site, 5);
  return [
    { stage: 'as compiled', bytes: hexBytes(compiled), instruction: oneInsn(kernel, compiled, site) },
    { stage: 'after boot (ftrace_init)', bytes: hexBytes(afterBoot), instruction: oneInsn(kernel, afterBoot, site) },
    { stage: 'now', bytes: hexBytes(now), instruction: oneInsn(kernel, now, site) },
  ];
}

export function explainFunction(kernel: Kernel, ftrace: Ftrace, fn: string): Explanation {
  const rec = ftrace.recordOf(fn);
  if (!rec) throw new Error(`${fn} has no fentry call site`);
  const site = rec.ip;
  const stages = siteStages(kernel, ftrace, rec);
  const target = ftrace.siteTarget(rec);
  const owner = target.kind === 'trampoline' ? ftrace.ops(target.ops) : undefined;
  const { path, callbacks, graph } = tracePath(kernel, ftrace, fn, defaultArgs(kernel, fn), site);
  return {
    function: fn,
    site,
    target: siteTargetLabel(target),
    stages,
    trampoline: owner ? annotateTrampoline(kernel, ftrace, owner) : null,
    path,
    callbacks,
    graph,
    symbolize: (a) => kernel.symbolize(a),
  };
}
