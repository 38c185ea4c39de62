// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Explaining one traced function, byte by byte: its call site as compiled,
 * after boot and now; the trampoline it calls, line by line; and the path one
 * call takes to each callback, with the registers each callback received.
 */
import { disassemble, formatInsnText, ripTarget, type Insn } from '../../asm/disasm.js';
import { hex, hexBytes } from '../../emu/index.js';
import { CALLBACK_FUNC, type CallbackName } from '../abi.js';
import { siteTargetLabel, type Ftrace } from '../ftrace/core.js';
import type { FtraceOps } from '../ftrace/ops.js';
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
}

function oneInsn(kernel: Kernel, bytes: Uint8Array, at: bigint): string {
  const [i] = disassemble(bytes, at, 1);
  return i ? formatInsnText(i, (a) => kernel.symbolize(a)) : '(undecodable)';
}

function annotateTrampoline(kernel: Kernel, ftrace: Ftrace, ops: FtraceOps): NonNullable<Explanation['trampoline']> {
  const { caller, start, size, opOffset: opOff, callOffset: callOff, slotOffset: slotOff } = ftrace.arch.trampolineLayout(ops.hasFlag('SAVE_REGS'));
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
    else if (offset === size) note = 'appended by create_trampoline: jmp ftrace_return';
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
function tracePath(kernel: Kernel, ftrace: Ftrace, fn: string, args: readonly bigint[], site: bigint): { path: string[]; callbacks: CallbackVisit[] } {
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
  const hooks = [
    cpu.addCodeHook(() => {
      armed = true;
      path.push(`${fn} call site`);
    }, site, site),
    cpu.addCodeHook(() => {
      armed = false;
    }, site + 5n, site + 5n),
    ...ftrace.codeRanges.map(([a, b]) => cpu.addCodeHook((x) => visit(x), a, b)),
    ...(Object.entries(CALLBACK_FUNC) as [CallbackName, string][]).map(([cb, f]) =>
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
  return { path, callbacks };
}

export function explainFunction(kernel: Kernel, ftrace: Ftrace, fn: string): Explanation {
  const rec = ftrace.recordOf(fn);
  if (!rec) throw new Error(`${fn} has no fentry call site`);
  const site = rec.ip;
  const compiled = kernel.program.bytes.subarray(Number(site - kernel.program.base), Number(site - kernel.program.base) + 5);
  const now = kernel.memory.read(site, 5);
  const nop = ftrace.siteAfterBoot(rec);
  const stages: SiteStage[] = [
    { stage: 'as compiled', bytes: hexBytes(compiled), instruction: oneInsn(kernel, compiled, site) },
    { stage: 'after boot (ftrace_init)', bytes: hexBytes(nop), instruction: oneInsn(kernel, nop, site) },
    { stage: 'now', bytes: hexBytes(now), instruction: oneInsn(kernel, now, site) },
  ];
  const target = ftrace.siteTarget(rec);
  const owner = target.kind === 'trampoline' ? ftrace.ops(target.ops) : undefined;
  const { path, callbacks } = tracePath(kernel, ftrace, fn, defaultArgs(kernel, fn), site);
  return {
    function: fn,
    site,
    target: siteTargetLabel(target),
    stages,
    trampoline: owner ? annotateTrampoline(kernel, ftrace, owner) : null,
    path,
    callbacks,
  };
}
