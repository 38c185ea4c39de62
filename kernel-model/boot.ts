// SPDX-License-Identifier: GPL-2.0-or-later
/* Boot: assemble and load the model kernel, then ftrace_init(). */
import { X86Ftrace } from './arch/x86/ftrace.js';
import { Ftrace } from './ftrace/core.js';
import { Kernel, type BootTimings, type KernelConfig } from './kernel.js';

export interface Booted {
  kernel: Kernel;
  ftrace: Ftrace;
  timings: BootTimings;
}

export interface BootHooks {
  /** Runs on the loaded kernel before ftrace_init() (e.g. to corrupt a call site). */
  beforeFtraceInit?: (kernel: Kernel) => void;
}

export async function boot(config: Partial<KernelConfig> = {}, hooks: BootHooks = {}): Promise<Booted> {
  const t0 = performance.now();
  const { kernel, assembleMs, loadMs, fromCache } = await Kernel.assemble(config);
  try {
    hooks.beforeFtraceInit?.(kernel);
    const ftrace = new Ftrace(kernel, (k, ftraceLocation, opsGetFunc) => new X86Ftrace(k, ftraceLocation, opsGetFunc));
    const { nopMs } = ftrace.convertCallSitesToNop();
    return { kernel, ftrace, timings: { assembleMs, loadMs, nopMs, totalMs: performance.now() - t0, fromCache } };
  } catch (e) {
    kernel.close();
    throw e;
  }
}
