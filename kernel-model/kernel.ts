// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The model kernel: its configuration, its memory map, its text assembled by
 * Keystone and its data, on the Machine that runs it. Boot (boot.ts) then
 * hands it to ftrace_init().
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assembleProgram, type Program, type SourceUnit } from '../asm/assembler.js';
import type { SymbolTable } from '../asm/symbols.js';
import { packageRoot } from '../emu/package-root.js';
import { GuestMemory, RW, RWX, RX, hex, permsToString } from '../emu/index.js';
import {
  DIRECT_MAP_SLACK,
  TRACE_ENTRY,
  FILE,
  KERNEL_DATA,
  KERNEL_TEXT,
  MODULES_SIZE,
  MODULES_VADDR,
  NR,
  PAGE_OFFSET,
  PERCPU,
  PERCPU_BASE,
  PERCPU_STRIDE,
  THREAD_SIZE,
  VMALLOC_START,
  DYN_FTRACE,
  STACK_STRIDE,
  abiSymbols,
} from './abi.js';
import { DataLayout, RangeAllocator } from './allocator.js';
import { eraRules } from './ftrace/era.js';
import { MAX_CPUS, MAX_FUNCTIONS, type CallSites, type Era } from './limits.js';
import { initFtraceData, placeFtraceData, placeStaticOpsPool, STATIC_OPS_POOL_SIZE } from './ftrace/data.js';
import { generateFunctions } from './generate.js';
import { Machine, type CallOptions, type TaskSync } from './machine.js';
import { initRingBuffer, placeRingBuffer } from './trace/ring-buffer.js';
import { InstructionClock } from './trace/clock.js';
import { initGraphData, placeGraphData } from './ftrace/fgraph.js';
import { Tasks, placeTaskData } from './tasks.js';
import { initDisassembler } from '../asm/disasm.js';

export { CALL_SITES, ERAS, ERA_ALIASES, parseEra, type CallSites, type Era } from './limits.js';

export interface KernelConfig {
  /** How many generated functions beside the hand-written core. */
  functions: number;
  /** CONFIG_MODULES: without it there is no module space and no trampolines. */
  modules: boolean;
  /**
   * Which kernel this is: '3.17' (before per-ops trampolines), '3.18' (the
   * seed), '3.19' or 'modern' (v6.x). What differs is in ftrace/era.ts,
   * the entry code in kernel-model/x86/<version>/.
   */
  era: Era;
  /**
   * How the kernel was compiled: -pg -mfentry (`call __fentry__` first in
   * every function) or -pg alone (frame pointer set up, then `call mcount`).
   */
  callsites: CallSites;
  /** Trace ring buffer entries (a power of two). */
  traceEntries: number;
  /** CPUs: 0 runs the control plane's calls; the others run under the SMP scheduler. */
  cpus: number;
  /**
   * How call sites are changed once the kernel runs (arch ftrace_replace_code):
   * 'int3' (the breakpoint protocol: the kernel's, and the default), 'direct'
   * (bytes checked and written at once; right only while nothing else runs)
   * or 'naive' (bytes written in place: the hazard, shown). Boot's
   * conversion to NOPs is always direct, as ftrace_init()'s is.
   */
  patching: 'direct' | 'int3' | 'naive';
  /** CONFIG_PREEMPT: a task may be preempted anywhere, inside a trampoline too. */
  preempt: boolean;
  /**
   * Whether dynamically allocated ops get trampolines. v3.18 says no ("until
   * there's a safe way to free the trampoline"); the later answers wait before
   * freeing one: see trampolineSync. By default the era's answer.
   */
  dynamicTrampolines: boolean;
  /**
   * What ftrace_shutdown waits for before a dynamic ops' trampoline is freed:
   * 'none' (the hazard), 'schedule_on_each_cpu' (enough without preemption,
   * 12cce594fa8f), 'rcu_tasks' (every task voluntarily scheduled, 0598e4f08e3d).
   */
  trampolineSync: 'none' | TaskSync;
  /**
   * Run each CPU's guest instruction clock (trace_clock_local()) from boot.
   * Off by default: it costs a block hook on every CPU, so it otherwise
   * starts when the first function or function_graph tracer registers (the
   * tracers whose ring-buffer entries the trace shows, stamped with it).
   */
  instructionClock: boolean;
  /**
   * false: the clock never runs and every entry's timestamp is 0. For runs
   * that check the entries' registers only and measure memory and speed
   * (torture), or where nothing traces (boot): the clock's hook, and the
   * disassembler it needs, are what would cost there.
   */
  traceClock: boolean;
  /**
   * When a replaced filter/notrace hash is freed: 'rcu' (call_rcu_sched, after
   * every CPU has left the preempt-disabled list walk: the kernel's) or
   * 'immediate' (the hazard, shown: a CPU still walking reads freed memory).
   */
  hashFree: 'rcu' | 'immediate';
  /** Where assembled kernels are cached; undefined disables the cache. */
  cacheDir: string | undefined;
  /**
   * The wall-clock budget of one host-made call into the guest. Scenario
   * limits keep legitimate work far inside it; a guest that loops ends here.
   */
  callBudgetMs: number;
}

const projectRoot = packageRoot(import.meta.url);
export const DEFAULT_CACHE_DIR = join(projectRoot, '.cache', 'asm');

export const DEFAULT_CONFIG: KernelConfig = {
  functions: 200,
  modules: true,
  era: '3.18',
  callsites: 'fentry',
  traceEntries: 1 << 16,
  cpus: 1,
  patching: 'int3',
  preempt: false,
  dynamicTrampolines: false,
  trampolineSync: 'schedule_on_each_cpu',
  instructionClock: false,
  traceClock: true,
  hashFree: 'rcu',
  cacheDir: DEFAULT_CACHE_DIR,
  callBudgetMs: 10_000,
};

export { MAX_FUNCTIONS, MAX_CPUS } from './limits.js';
/** module_alloc() hands out whole pages. */
export const MODULE_ALIGN = 4096;

/** A kernel configuration that no kernel can be built with: bad input, not a bug. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Every value of a KernelConfig: the defaults for what `config` leaves out
 * (some of them the era's), checked.
 */
export function resolveConfig(config: Partial<KernelConfig>): KernelConfig {
  const cfg: KernelConfig = { ...DEFAULT_CONFIG, ...config };
  const era = eraRules(cfg.era);
  // An era's own answer to dynamic trampolines, unless the caller chose one.
  if (config.dynamicTrampolines === undefined) {
    cfg.dynamicTrampolines = era.dynamicTrampolines === 'always' || (era.dynamicTrampolines === 'unless-preempt' && !cfg.preempt);
  }
  if (cfg.dynamicTrampolines && !era.trampolines) throw new ConfigError(`a ${era.version} kernel has no trampolines, so none for dynamic ops`);
  if (cfg.callsites === 'mcount' && !era.mcount) throw new ConfigError(`a ${era.version} x86-64 kernel has fentry call sites only (-mfentry is required)`);
  if (config.trampolineSync === undefined) cfg.trampolineSync = era.trampolineSync;
  if (!Number.isInteger(cfg.functions) || cfg.functions < 0 || cfg.functions > MAX_FUNCTIONS) {
    throw new ConfigError(`functions must be a whole number from 0 to ${MAX_FUNCTIONS}, not ${cfg.functions}`);
  }
  if (!Number.isInteger(Math.log2(cfg.traceEntries))) throw new ConfigError('traceEntries must be a power of two');
  if (!Number.isInteger(cfg.cpus) || cfg.cpus < 1 || cfg.cpus > MAX_CPUS) throw new ConfigError(`cpus must be from 1 to ${MAX_CPUS}, not ${cfg.cpus}`);
  return cfg;
}

/**
 * The x86 sources of the hand-written kernel of an era, in link order: the
 * era's entry code, then what every era shares. ftrace's text is the first
 * four, between the __ftrace_text_start/_end markers.
 */
export function coreSourceFiles(era: Era): string[] {
  return [eraRules(era).entryCode, 'ftrace_list.S', 'fgraph.S', 'callbacks.S', 'core.S', 'runtime.S'];
}

export function coreSources(era: Era): SourceUnit[] {
  return coreSourceFiles(era).map((f) => ({
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

const MiB = 1024 * 1024;
const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;
const USER_BUFFER = 0x7ff000000000n;

/**
 * The model kernel's contents: its memory map, its assembled text and its
 * data, on a Machine with config.cpus CPUs.
 */
export class Kernel {
  readonly machine: Machine;
  /** The machine's memory, which the kernel's contents live in. */
  readonly memory: GuestMemory;
  readonly kmalloc: RangeAllocator;
  /** module_alloc()'s space; undefined without CONFIG_MODULES. */
  readonly moduleSpace: RangeAllocator | undefined;
  /** Storage for ftrace_ops declared static (core kernel data). */
  readonly staticPool: RangeAllocator;
  readonly dataSymbols: ReadonlyMap<string, bigint>;
  readonly dataEnd: bigint;
  readonly stackTop: bigint;
  readonly userBuffer = USER_BUFFER;
  /** The dyn_ftrace array in guest memory (ftrace_pages), one record per call site. */
  readonly recordsBase: bigint;
  /** The kernel log: WARN-style reports of the control plane. */
  readonly dmesg: string[] = [];
  /** Every task's pid and comm, as the kernel's saved_cmdlines keeps them for the trace. */
  readonly savedCmdlines = new Map<number, string>();
  /** Every task's task_struct, and `current` per CPU. */
  readonly tasks: Tasks;
  /** The guest instruction clock, the trace clock (running from boot with config.instructionClock). */
  readonly clock: InstructionClock;

  private constructor(
    readonly config: KernelConfig,
    readonly program: Program,
    layout: DataLayout,
  ) {
    const memory = new GuestMemory();
    this.memory = memory;
    this.dataSymbols = layout.symbols;
    this.recordsBase = layout.place('ftrace_pages', program.mcountLoc.length * DYN_FTRACE.SIZE, 64);
    this.dataEnd = layout.end;
    memory.map('kernel-text', KERNEL_TEXT, roundUp(Math.max(program.bytes.length, 1), 2 * MiB), RX);
    memory.map('kernel-data', KERNEL_DATA, roundUp(Number(layout.end - KERNEL_DATA), 64 * 1024), RW);
    memory.map('percpu', PERCPU_BASE, PERCPU_STRIDE * config.cpus, RW);
    // As large as the ring buffer needs, and room for the rest: a boot allocates
    // (and the host collects) every region's buffer, so none is larger than it must be.
    const directMap = roundUp(config.traceEntries * TRACE_ENTRY.SIZE + DIRECT_MAP_SLACK, 2 * MiB);
    memory.map('direct-map', PAGE_OFFSET, directMap, RW);
    for (let c = 0; c < config.cpus; c++) memory.map(`stack:${c}`, this.stackBase(c), THREAD_SIZE, RW);
    memory.map('user', USER_BUFFER, 0x10000, RW);
    // module_alloc() gave v3.x's trampolines RWX pages; later kernels
    // set_memory_rox() them once written: there the guest sees them read-only.
    if (config.modules) memory.map('modules', MODULES_VADDR, MODULES_SIZE, eraRules(config.era).trampolineReadOnly ? RX : RWX);
    memory.write(KERNEL_TEXT, program.bytes);
    // Kernel data joins kallsyms too, so disassembly can name what %rip points at.
    program.symbols.add(...[...layout.symbols].map(([name, address]) => ({ name, address, size: layout.sizes.get(name)! })));

    this.stackTop = this.stackBase(0) + BigInt(THREAD_SIZE);
    this.kmalloc = new RangeAllocator('kmalloc', PAGE_OFFSET, memory.region('direct-map').size, 16);
    this.moduleSpace = config.modules ? new RangeAllocator('module_alloc', MODULES_VADDR, MODULES_SIZE, MODULE_ALIGN) : undefined;
    this.staticPool = new RangeAllocator('static ftrace_ops', this.sym('__static_ops_pool'), STATIC_OPS_POOL_SIZE, 16);
    this.machine = new Machine(memory, config.cpus, (a) => this.symbolize(a), program.symbols.addr('__sim_return'));
    this.machine.cpus.forEach((e, c) => e.writeReg('gs_base', PERCPU_BASE + BigInt(c * PERCPU_STRIDE)));
    this.tasks = new Tasks(memory, this.kmalloc, layout.symbols.get('init_task')!);
    this.clock = new InstructionClock(this.machine);
    if (config.instructionClock) this.clock.start();
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

  get symbols(): SymbolTable {
    return this.program.symbols;
  }

  /** Assembles (or loads from the cache) the kernel, maps it and initialises its data. */
  static async assemble(config: Partial<KernelConfig> = {}): Promise<{ kernel: Kernel; assembleMs: number; loadMs: number; fromCache: boolean }> {
    const cfg = resolveConfig(config);
    // The trace clock counts each block's instructions with it (trace/clock.ts);
    // without the clock the disassembler (~14 MB RSS) need not load.
    if (cfg.traceClock) await initDisassembler();
    const t0 = performance.now();
    const { program, layout } = await kernelImage(cfg);
    const t1 = performance.now();
    const kernel = new Kernel(cfg, program, layout);
    kernel.initData();
    const t2 = performance.now();
    return { kernel, assembleMs: t1 - t0, loadMs: t2 - t1, fromCache: program.fromCache };
  }

  private initData(): void {
    const m = this.memory;
    const d = (n: string) => this.sym(n);
    initFtraceData(m, d);
    initRingBuffer(m, this.kmalloc, d, this.config.traceEntries);
    initGraphData(m, d);
    // System calls and files: fd 3 reads a 4 KiB file of known bytes, fd 4 sums what it is written.
    for (let nr = 0; nr < NR.syscalls; nr++) m.writeU64(d('sys_call_table') + BigInt(nr * 8), d('sys_ni_syscall'));
    m.writeU64(d('sys_call_table') + BigInt(NR.read * 8), d('__x64_sys_read'));
    m.writeU64(d('sys_call_table') + BigInt(NR.write * 8), d('__x64_sys_write'));
    m.writeU64(d('sys_call_table') + BigInt(NR.getpid * 8), d('__x64_sys_getpid'));
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
      this.setTaskComm(c + 1, `sim/${c}`);
    }
    this.tasks.initCpus(this.config.cpus);
  }


  setTaskComm(pid: number, comm: string): void {
    this.savedCmdlines.set(pid, comm.slice(0, 15));
  }

  /** What the trace prints for a pid: its comm, or `<...>` as trace_find_cmdline() does for an unknown one. */
  taskComm(pid: number): string {
    return this.savedCmdlines.get(pid) ?? '<...>';
  }

  private rcuCallbacks: (() => void)[] = [];

  /** call_rcu(): runs `fn` once a grace period has passed (rcuGracePeriod()). */
  call_rcu(fn: () => void): void {
    this.rcuCallbacks.push(fn);
  }

  /**
   * A grace period: every CPU has left the code that may hold references
   * (the caller makes sure of that, e.g. with the scheduler's quiesce()), so
   * the callbacks queued before it run now.
   */
  rcuGracePeriod(): void {
    const due = this.rcuCallbacks;
    this.rcuCallbacks = [];
    for (const fn of due) fn();
  }

  /** kfree() of guest memory, poisoned first (POISON_FREE, 0x6b) so a stale reader finds garbage, not old data. */
  kfreePoisoned(addr: bigint): void {
    const size = this.kmalloc.sizeOf(addr);
    if (size !== undefined) this.memory.fill(addr, size, 0x6b);
    this.kmalloc.release(addr);
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

  /** Calls a kernel function (by name or address) on CPU 0 with up to six arguments; returns %rax. */
  call(target: string | bigint, args: readonly bigint[] = [], opts: CallOptions = {}): bigint {
    return this.machine.call(typeof target === 'string' ? this.sym(target) : target, args, this.stackTop, { timeoutMs: this.config.callBudgetMs, ...opts });
  }

  close(): void {
    this.machine.close();
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

export const FILE_DATA_SIZE = 4096;

/** The bytes of the model's input file: a simple pattern the host can recompute. */
export function modelFileContents(): Uint8Array {
  const b = new Uint8Array(FILE_DATA_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

/**
 * The kernel's text and the layout of its data, before anything is mapped:
 * what boot loads, and what a scenario's names are checked against.
 */
export async function kernelImage(cfg: KernelConfig): Promise<{ program: Program; layout: DataLayout }> {
  const layout = staticData();
  const externals = new Map([...abiSymbols(), ...layout.symbols]);
  // The entry code reads the parent's ip (and the graph tracer its slot) where the compiler left it.
  externals.set('CC_USING_FENTRY', cfg.callsites === 'fentry' ? 1n : 0n);
  const program = await assembleProgram([...coreSources(cfg.era), ...generateFunctions(cfg.functions)], {
    base: KERNEL_TEXT,
    profile: cfg.callsites,
    externals,
    cacheDir: cfg.cacheDir,
  });
  return { program, layout };
}

/** The kernel's static data, laid out before assembly so the text can name it. */
function staticData(): DataLayout {
  const l = new DataLayout(KERNEL_DATA);
  placeFtraceData(l);
  placeRingBuffer(l);
  placeGraphData(l);
  placeTaskData(l);
  l.place('sys_call_table', NR.syscalls * 8, 64);
  l.place('fd_table', 8 * 8);
  l.place('file_in', FILE.STRUCT_SIZE);
  l.place('file_out', FILE.STRUCT_SIZE);
  l.place('rq_lock', 8, 64);
  l.place('nr_switches', 8);
  l.place('sim_scratch_lock', 8, 64);
  l.place('file_data', FILE_DATA_SIZE, 4096);
  placeStaticOpsPool(l);
  return l;
}
