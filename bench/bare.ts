// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A bare Unicorn engine with no simulator around it: the same guest bytes,
 * mapped from copies of the simulator's memory, started with uc_emu_start
 * directly. The yardstick for the simulator's own overhead.
 */
import { GENERAL_REGS } from '../emu/unicorn.js';
import { UC_ARCH_X86, UC_MODE_64, X86_REG, uc } from '../emu/unicorn.js';
import type { Kernel } from '../kernel-model/kernel.js';

export class BareEngine {
  private readonly h: unknown;
  private readonly buffers: Buffer[] = [];
  private readonly reg = Buffer.alloc(8);

  constructor(kernel: Kernel) {
    const out: [unknown] = [null];
    if (uc.open(UC_ARCH_X86, UC_MODE_64, out) !== 0) throw new Error('uc_open failed');
    this.h = out[0];
    for (const r of kernel.memory.allRegions()) {
      const copy = Buffer.from(r.buffer); // its own memory: nothing shared with the simulator
      this.buffers.push(copy);
      if (uc.memMapPtr(this.h, r.base, r.size, 7, copy) !== 0) throw new Error(`map ${r.name} failed`);
    }
    for (const name of GENERAL_REGS) this.set(name, kernel.machine.cpu.readReg(name));
    this.set('gs_base', kernel.machine.cpu.readReg('gs_base'));
  }

  set(name: keyof typeof X86_REG, v: bigint): void {
    this.reg.writeBigUInt64LE(BigInt.asUintN(64, v), 0);
    uc.regWrite(this.h, X86_REG[name], this.reg);
  }

  get(name: keyof typeof X86_REG): bigint {
    uc.regRead(this.h, X86_REG[name], this.reg);
    return this.reg.readBigUInt64LE(0);
  }

  writeU64(kernel: Kernel, addr: bigint, v: bigint): void {
    const r = kernel.memory.find(addr, 8)!;
    const i = kernel.memory.allRegions().indexOf(r);
    this.buffers[i]!.writeBigUInt64LE(v, Number(addr - r.base));
  }

  /** Calls fn(args) exactly as Kernel.call does, with nothing else around it. */
  call(kernel: Kernel, fn: bigint, args: bigint[]): bigint {
    const sentinel = kernel.sym('__sim_return');
    const rsp = kernel.stackTop - 8n;
    this.writeU64(kernel, rsp, sentinel);
    this.set('rsp', rsp);
    const regs = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const;
    args.forEach((a, i) => this.set(regs[i]!, a));
    const err = uc.emuStart(this.h, fn, sentinel, 0n, 0) as number;
    if (err !== 0) throw new Error(`bare engine: uc_emu_start error ${err}`);
    return this.get('rax');
  }

  close(): void {
    uc.close(this.h);
  }
}
