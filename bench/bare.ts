// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A bare Unicorn engine with no simulator around it: the same guest bytes,
 * mapped from copies of the simulator's memory, started with uc_emu_start
 * directly. The yardstick for the simulator's own overhead.
 *
 * On Unicorn 2.0 the regions are mapped flat at their virtual addresses, as
 * the simulator did before paging. Unicorn 2.1 cannot run at kernel
 * addresses without paging: there the bare engine maps the regions at their
 * physical homes with a copy of the page tables, and lets Unicorn's own MMU
 * walk them (no TLB-fill hook), the cheapest way 2.1 runs these bytes.
 */
import { PAGE_TABLES_PHYS } from '../emu/paging.js';
import { GENERAL_REGS, UC_AT_LEAST_2_1, UC_X86_REG_MSR } from '../emu/unicorn.js';
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
      if (uc.memMapPtr(this.h, UC_AT_LEAST_2_1 ? r.phys : r.base, r.size, 7, copy) !== 0) throw new Error(`map ${r.name} failed`);
    }
    if (UC_AT_LEAST_2_1) {
      const tables = Buffer.from(kernel.memory.pageTables.buffer);
      this.buffers.push(tables);
      if (uc.memMapPtr(this.h, PAGE_TABLES_PHYS, tables.length, 3, tables) !== 0) throw new Error('map page tables failed');
      this.set('cr4', this.get('cr4') | (1n << 5n));
      const efer = Buffer.alloc(16);
      efer.writeUInt32LE(0xc0000080, 0);
      efer.writeBigUInt64LE((1n << 8n) | (1n << 10n) | (1n << 11n), 8);
      uc.regWrite(this.h, UC_X86_REG_MSR, efer);
      this.set('cr3', kernel.memory.pageTables.cr3);
      this.set('cr0', this.get('cr0') | 1n | (1n << 16n) | (1n << 31n));
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
