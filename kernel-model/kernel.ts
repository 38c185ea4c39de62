// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The model kernel: its memory map, its text assembled by Keystone, one
 * emulated CPU to run it, and boot, which ends in ftrace_init() turning every
 * fentry call site into a NOP.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assembleProgram, type Program, type SourceUnit } from '../asm/assembler.js';
import type { SymbolTable } from '../asm/symbols.js';
import { packageRoot } from '../emu/package-root.js';
import { Engine, GuestMemory, RW, RX, hex, permsToString, type RunOptions } from '../emu/index.js';
import {
  DIRECT_MAP_SIZE,
  FILE,
  KERNEL_DATA,
  KERNEL_TEXT,
  MODULES_SIZE,
  MODULES_VADDR,
  NR,
  OPS,
  PAGE_OFFSET,
  PERCPU,
  PERCPU_BASE,
  PERCPU_STRIDE,
  STATS,
  THREAD_SIZE,
  TRACE_ENTRY,
  VMALLOC_START,
  DYN_FTRACE,
  STACK_STRIDE,
  abiSymbols,
} from './abi.js';
import { DataLayout, RangeAllocator } from './allocator.js';
import { generateFunctions } from './generate.js';

export interface KernelConfig {
  /** How many generated functions beside the hand-written core. */
  functions: number;
  /** CONFIG_MODULES: without it there is no module space and no trampolines. */
  modules: boolean;
  /** Per-ops trampolines (the seed); false behaves like a kernel before it. */
  trampolines: boolean;
  /**
   * Which kernel's rules where they changed after the seed: 'seed' (v3.18/3.19)
   * or 'modern' (a record whose count drops back to one returns to the
   * remaining ops' trampoline; the int3 handler emulates the new instruction).
   */
  era: 'seed' | 'modern';
  /** Trace ring buffer entries (a power of two). */
  traceEntries: number;
  /** CPUs: 0 runs the control plane's calls; the others run under the SMP scheduler. */
  cpus: number;
  /**
   * How call sites are changed once the kernel runs (arch ftrace_replace_code):
   * 'direct' (one CPU), 'int3' (the breakpoint protocol; the default with
   * several CPUs) or 'naive' (bytes written in place: the hazard, shown).
   */
  patching: 'direct' | 'int3' | 'naive';
  /** CONFIG_PREEMPT: a task may be preempted anywhere, inside a trampoline too. */
  preempt: boolean;
  /**
   * Whether dynamically allocated ops get trampolines. The seed says no ("until
   * there's a safe way to free the trampoline"); the later answers wait before
   * freeing one: see trampolineSync.
   */
  dynamicTrampolines: boolean;
  /**
   * What ftrace_shutdown waits for before a dynamic ops' trampoline is freed:
   * 'none' (the hazard), 'schedule_on_each_cpu' (enough without preemption,
   * 12cce594fa8f), 'rcu_tasks' (every task voluntarily scheduled, 0598e4f08e3d).
   */
  trampolineSync: 'none' | 'schedule_on_each_cpu' | 'rcu_tasks';
  /** Where assembled kernels are cached; undefined disables the cache. */
  cacheDir: string | undefined;
}

const projectRoot = packageRoot(import.meta.url);
export const DEFAULT_CACHE_DIR = join(projectRoot, '.cache', 'asm');

export const DEFAULT_CONFIG: KernelConfig = {
  functions: 200,
  modules: true,
  trampolines: true,
  era: 'seed',
  traceEntries: 1 << 16,
  cpus: 1,
  patching: 'direct',
  preempt: false,
  dynamicTrampolines: false,
  trampolineSync: 'schedule_on_each_cpu',
  cacheDir: DEFAULT_CACHE_DIR,
};

export const MAX_FUNCTIONS = 200_000;
export const MAX_CPUS = 8;

/** The x86 sources of the hand-written kernel, in link order. */
export const CORE_SOURCES = ['ftrace_64.S', 'ftrace_list.S', 'callbacks.S', 'core.S', 'runtime.S'];

export function coreSources(): SourceUnit[] {
  return CORE_SOURCES.map((f) => ({
    name: `kernel-model/x86/${f}`,
    text: readFileSync(join(projectRoot, 'kernel-model', 'x86', f), 'utf8'),
  }));
}

export interface BootTimings {
  assembleMs: number;
  loadMs: number;
  nopMs: number;
  totalMs: number;
  fromCache: boolean;
}

export interface CallOptions {
  timeoutMs?: number;
  budget?: number;
}

const MiB = 1024 * 1024;
const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Returned by Kernel.call: what %rax held when the function returned. */
export interface CallResult {
  ret: bigint;
}

export class Kernel {
  readonly memory = new GuestMemory();
  /** CPU 0: the control plane's calls run here. */
  readonly cpu: Engine;
  /** Every CPU; those after CPU 0 always count instructions, for the scheduler's quanta. */
  readonly cpus: Engine[];
  /** Called after every CPU's code cache was synchronised (run_sync): where other CPUs may run. */
  onSync: (() => void) | undefined;
  /**
   * What the kernel's synchronising IPIs stand for (ftrace_sync_ipi): returns
   * once no other CPU's running task is inside ftrace code (callers,
   * trampolines, the list function, callbacks). Set by the scheduler; with
   * one CPU there is nothing to wait for.
   */
  synchronizeCpus: (() => void) | undefined;
  /** schedule_on_each_cpu() or synchronize_rcu_tasks(): set by the scheduler. */
  synchronizeTasks: ((how: 'schedule_on_each_cpu' | 'rcu_tasks') => void) | undefined;

  readonly kmalloc: RangeAllocator;
  /** module_alloc()'s space; undefined without CONFIG_MODULES. */
  readonly moduleSpace: RangeAllocator | undefined;
  /** Storage for ftrace_ops declared static (core kernel data). */
  readonly staticPool: RangeAllocator;
  readonly dataSymbols: ReadonlyMap<string, bigint>;
  readonly dataEnd: bigint;
  readonly stackTop: bigint;
  readonly userBuffer: bigint;
  /** The dyn_ftrace array in guest memory (ftrace_pages), one record per call site. */
  readonly recordsBase: bigint;
  /** The return address every host-made call pushes; runs stop when %rip reaches it. */
  readonly sentinel: bigint;
  private readonly ftraceCode: readonly (readonly [bigint, bigint])[];
  /** The kernel log: WARN-style reports of the control plane. */
  readonly dmesg: string[] = [];

  private constructor(
    readonly config: KernelConfig,
    readonly program: Program,
    layout: DataLayout,
  ) {
    const { memory } = this;
    this.dataSymbols = layout.symbols;
    this.recordsBase = layout.place('ftrace_pages', program.mcountLoc.length * DYN_FTRACE.SIZE, 64);
    this.dataEnd = layout.end;
    memory.map('kernel-text', KERNEL_TEXT, roundUp(Math.max(program.bytes.length, 1), 2 * MiB), RX);
    memory.map('kernel-data', KERNEL_DATA, roundUp(Number(layout.end - KERNEL_DATA), 64 * 1024), RW);
    memory.map('percpu', PERCPU_BASE, PERCPU_STRIDE * config.cpus, RW);
    memory.map('direct-map', PAGE_OFFSET, DIRECT_MAP_SIZE, RW);
    for (let c = 0; c < config.cpus; c++) memory.map(`stack:${c}`, this.stackBase(c), THREAD_SIZE, RW);
    memory.map('user', 0x7ff000000000n, 0x10000, RW);
    if (config.modules) memory.map('modules', MODULES_VADDR, MODULES_SIZE, RX);
    memory.write(KERNEL_TEXT, program.bytes);
    // Kernel data joins kallsyms too, so disassembly can name what %rip points at.
    program.symbols.add(...[...layout.symbols].map(([name, address]) => ({ name, address, size: layout.sizes.get(name)! })));

    this.stackTop = this.stackBase(0) + BigInt(THREAD_SIZE);
    this.userBuffer = 0x7ff000000000n;
    this.sentinel = program.symbols.addr('__sim_return');
    const u = program.units;
    this.ftraceCode = [
      [u[0]!.base, u[2]!.base + BigInt(u[2]!.size) - 1n],
      [MODULES_VADDR, MODULES_VADDR + BigInt(MODULES_SIZE) - 1n],
    ];
    this.kmalloc = new RangeAllocator('kmalloc', PAGE_OFFSET, DIRECT_MAP_SIZE, 16);
    this.moduleSpace = config.modules ? new RangeAllocator('module_alloc', MODULES_VADDR, MODULES_SIZE, 4096) : undefined;
    const pool = layout.symbols.get('__static_ops_pool')!;
    this.staticPool = new RangeAllocator('static ftrace_ops', pool, STATIC_POOL_SIZE, 16);
    this.cpus = [];
    for (let c = 0; c < config.cpus; c++) {
      const e = Engine.open(memory, { symbolize: (a) => this.symbolize(a), counting: c > 0 });
      e.writeReg('gs_base', PERCPU_BASE + BigInt(c * PERCPU_STRIDE));
      this.cpus.push(e);
    }
    this.cpu = this.cpus[0]!;
  }

  /** Each CPU's initial task has its own stack, with an unmapped guard gap between stacks. */
  stackBase(cpu: number): bigint {
    return VMALLOC_START + BigInt(cpu * STACK_STRIDE);
  }

  /** Maps a stack for one more task (after the CPUs' own); returns its top. */
  allocTaskStack(task: number): bigint {
    const base = this.stackBase(MAX_CPUS + task);
    this.memory.map(`task:${task}`, base, THREAD_SIZE, RW);
    return base + BigInt(THREAD_SIZE);
  }

  /**
   * ftrace's own code, as [first, last] address ranges: its text (the first
   * three units: ftrace_64.S, ftrace_list.S, callbacks.S) and module space,
   * where trampolines live.
   */
  ftraceCodeRanges(): readonly (readonly [bigint, bigint])[] {
    return this.ftraceCode;
  }

  /** Whether a CPU at `rip` is inside ftrace's own code. */
  inFtraceCode(rip: bigint): boolean {
    return this.ftraceCode.some(([a, b]) => rip >= a && rip <= b);
  }

  get symbols(): SymbolTable {
    return this.program.symbols;
  }

  /** Assembles (or loads from the cache) the kernel, maps it and initialises its data. */
  static async assemble(config: Partial<KernelConfig> = {}): Promise<{ kernel: Kernel; assembleMs: number; loadMs: number; fromCache: boolean }> {
    const cfg: KernelConfig = { ...DEFAULT_CONFIG, ...config };
    if (config.patching === undefined && cfg.cpus > 1) cfg.patching = 'int3';
    if (!Number.isInteger(cfg.functions) || cfg.functions < 0 || cfg.functions > MAX_FUNCTIONS) {
      throw new RangeError(`functions must be a whole number from 0 to ${MAX_FUNCTIONS}, not ${cfg.functions}`);
    }
    if (!Number.isInteger(Math.log2(cfg.traceEntries))) throw new RangeError('traceEntries must be a power of two');
    if (!Number.isInteger(cfg.cpus) || cfg.cpus < 1 || cfg.cpus > MAX_CPUS) throw new RangeError(`cpus must be from 1 to ${MAX_CPUS}, not ${cfg.cpus}`);
    const layout = staticData();
    const externals = new Map([...abiSymbols(), ...layout.symbols]);
    const t0 = performance.now();
    const program = await assembleProgram([...coreSources(), ...generateFunctions(cfg.functions)], {
      base: KERNEL_TEXT,
      externals,
      cacheDir: cfg.cacheDir,
    });
    const t1 = performance.now();
    const kernel = new Kernel(cfg, program, layout);
    kernel.initData();
    const t2 = performance.now();
    return { kernel, assembleMs: t1 - t0, loadMs: t2 - t1, fromCache: program.fromCache };
  }

  private initData(): void {
    const m = this.memory;
    const d = (n: string) => this.dataSymbols.get(n)!;
    const s = (n: string) => this.symbols.addr(n);
    // ftrace_list_end: the STUB ops that ends every list; function_trace_op starts there.
    const end = d('ftrace_list_end');
    m.writeU64(end + BigInt(OPS.FUNC), s('ftrace_stub'));
    m.writeU64(end + BigInt(OPS.NEXT), end);
    m.writeU64(end + BigInt(OPS.FLAGS), 1n << 5n /* STUB */);
    m.writeU64(end + BigInt(OPS.PRIVATE), d('ftrace_list_end_stats'));
    m.writeU64(d('ftrace_ops_list'), end);
    m.writeU64(d('function_trace_op'), end);
    m.writeU64(d('ftrace_trace_function'), s('ftrace_stub'));
    // The trace ring buffer.
    const bytes = this.config.traceEntries * TRACE_ENTRY.SIZE;
    const buf = this.kmalloc.alloc(bytes);
    if (buf === undefined) throw new Error('no room for the trace buffer in the direct map');
    m.writeU64(d('trace_buf'), buf);
    m.writeU64(d('trace_mask'), BigInt(this.config.traceEntries - 1));
    // System calls and files: fd 3 reads a 4 KiB file of known bytes, fd 4 sums what it is written.
    for (let nr = 0; nr < NR.syscalls; nr++) m.writeU64(d('sys_call_table') + BigInt(nr * 8), s('sys_ni_syscall'));
    m.writeU64(d('sys_call_table') + BigInt(NR.read * 8), s('__x64_sys_read'));
    m.writeU64(d('sys_call_table') + BigInt(NR.write * 8), s('__x64_sys_write'));
    m.writeU64(d('sys_call_table') + BigInt(NR.getpid * 8), s('__x64_sys_getpid'));
    const data = d('file_data');
    m.write(data, modelFileContents());
    for (const [fd, f] of [[3, d('file_in')], [4, d('file_out')]] as const) {
      m.writeU64(d('fd_table') + BigInt(fd * 8), f);
      m.writeU64(f + BigInt(FILE.DATA), data);
      m.writeU64(f + BigInt(FILE.SIZE), BigInt(FILE_DATA_SIZE));
    }
    // Per-CPU areas; the task running on CPU c has pid c + 1.
    for (let c = 0; c < this.config.cpus; c++) {
      const area = PERCPU_BASE + BigInt(c * PERCPU_STRIDE);
      m.writeU64(area + BigInt(PERCPU.CPU_NUMBER), BigInt(c));
      m.writeU64(area + BigInt(PERCPU.CURRENT_PID), BigInt(c + 1));
    }
  }

  /** A WARN_ON-style report: logged, never thrown; the caller falls back. */
  warn(message: string): void {
    this.dmesg.push(`WARNING: ${message}`);
  }

  /** `func+0x1c`, or undefined outside every symbol. */
  symbolize(address: bigint): string | undefined {
    return this.symbols.format(address);
  }

  /** The address of a kernel symbol or of kernel data by name. */
  sym(name: string): bigint {
    const s = this.symbols.get(name);
    if (s) return s.address;
    const d = this.dataSymbols.get(name);
    if (d !== undefined) return d;
    throw new Error(`unknown symbol ${name}`);
  }

  isCoreKernelData(addr: bigint): boolean {
    return addr >= KERNEL_DATA && addr < this.dataEnd;
  }

  /**
   * Sets `cpu` up to call fn(args) on the stack below `stackTop`, returning
   * to `sentinel` (where runs stop): return address pushed, %rsp 8 below a
   * 16-byte boundary as at any function's entry, arguments in registers, %rip.
   */
  enterCall(cpu: Engine, stackTop: bigint, fn: bigint, args: readonly bigint[]): void {
    if (args.length > 6) throw new Error('at most six register arguments');
    const rsp = stackTop - 8n;
    this.memory.writeU64(rsp, this.sentinel);
    cpu.writeReg('rsp', rsp);
    const regs = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const;
    args.forEach((a, i) => cpu.writeReg(regs[i]!, a));
    cpu.writeReg('rip', fn);
  }

  /**
   * Calls a guest function with up to six arguments on the kernel stack and
   * returns %rax. Faults are thrown as GuestFault.
   */
  call(target: string | bigint, args: readonly bigint[] = [], opts: CallOptions = {}): CallResult {
    const fn = typeof target === 'string' ? this.sym(target) : target;
    const cpu = this.cpu;
    this.enterCall(cpu, this.stackTop, fn, args);
    const run: RunOptions = { begin: fn, until: this.sentinel, timeoutMs: opts.timeoutMs ?? 10_000 };
    if (opts.budget !== undefined) run.budget = opts.budget;
    cpu.run(run);
    return { ret: cpu.readReg('rax') };
  }

  /**
   * Writes new bytes over kernel or module text and drops every CPU's
   * translations of them: the only way the control plane changes code.
   */
  textPoke(address: bigint, bytes: Uint8Array): void {
    this.memory.write(address, bytes);
    this.syncCores([[address, address + BigInt(bytes.length)]], false);
  }

  /**
   * run_sync(): make every CPU see the current bytes of these ranges, by
   * dropping its translations of them (sync_core() on each CPU). Then, when
   * `letOthersRun`, give the scheduler its chance to run the other CPUs.
   */
  syncCores(ranges: readonly (readonly [bigint, bigint])[], letOthersRun = true): void {
    // Many ranges are dropped as the one span that covers them: one call per
    // CPU, and dropping code that did not change only costs a retranslation.
    let spans = ranges;
    if (ranges.length > 8) {
      let lo = ranges[0]![0];
      let hi = ranges[0]![1];
      for (const [a, b] of ranges) {
        if (a < lo) lo = a;
        if (b > hi) hi = b;
      }
      spans = [[lo, hi]];
    }
    for (const cpu of this.cpus) for (const [a, b] of spans) cpu.invalidate(a, b);
    // Retranslated code piles up in Unicorn's translation buffer: renew the
    // CPUs' engines every so often (see Engine.renew) so memory stays flat.
    // (A CPU with hooks installed declines; it is asked again next time round.)
    this.pokesSinceRenew += ranges.length;
    if (this.pokesSinceRenew >= RENEW_AFTER_POKES) {
      for (const c of this.cpus) c.renew();
      this.pokesSinceRenew = 0;
    }
    if (letOthersRun) this.onSync?.();
  }

  private pokesSinceRenew = 0;

  close(): void {
    for (const c of this.cpus) c.close();
  }

  describeRegions(): { name: string; start: string; end: string; size: number; perms: string }[] {
    return this.memory.allRegions().map((r) => ({
      name: r.name,
      start: hex(r.base),
      end: hex(r.base + BigInt(r.size)),
      size: r.size,
      perms: permsToString(r.perms),
    }));
  }
}

const STATIC_POOL_SIZE = 64 * 1024;
const RENEW_AFTER_POKES = 2000;
export const FILE_DATA_SIZE = 4096;

/** The bytes of the model's input file: a simple pattern the host can recompute. */
export function modelFileContents(): Uint8Array {
  const b = new Uint8Array(FILE_DATA_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

/** The kernel's static data, laid out before assembly so the text can name it. */
function staticData(): DataLayout {
  const l = new DataLayout(KERNEL_DATA);
  l.place('function_trace_op', 8);
  l.place('ftrace_trace_function', 8);
  l.place('ftrace_ops_list', 8);
  l.place('ftrace_list_end', OPS.SIZE, 64);
  l.place('ftrace_list_end_stats', STATS.SIZE);
  l.place('trace_seq', 8, 64);
  l.place('trace_mask', 8);
  l.place('trace_buf', 8);
  l.place('sys_call_table', NR.syscalls * 8, 64);
  l.place('fd_table', 8 * 8);
  l.place('file_in', FILE.STRUCT_SIZE);
  l.place('file_out', FILE.STRUCT_SIZE);
  l.place('rq_lock', 8, 64);
  l.place('nr_switches', 8);
  l.place('sim_scratch_lock', 8, 64);
  l.place('file_data', FILE_DATA_SIZE, 4096);
  l.place('__static_ops_pool', STATIC_POOL_SIZE, 64);
  return l;
}
