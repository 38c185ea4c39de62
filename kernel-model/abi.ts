// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The model kernel's ABI: its memory map, structure layouts and flag values,
 * shared by the TypeScript control plane and the x86 sources (which receive
 * every constant below as an assembler symbol, so there is one definition).
 */

/* Memory map, as on x86-64 Linux (Documentation/arch/x86/x86_64/mm.rst). */
export const KERNEL_TEXT = 0xffffffff81000000n;
export const KERNEL_DATA = 0xffffffff83000000n;
/** Module space: within rel32 reach of kernel text, where module_alloc places code (8 MiB: 2,048 one-page trampolines). */
export const MODULES_VADDR = 0xffffffffa0000000n;
export const MODULES_SIZE = 8 * 1024 * 1024;
/** The direct map: where kmalloc'd objects (dynamic ftrace_ops, hashes, buffers) live. */
export const PAGE_OFFSET = 0xffff888000000000n;
/** The direct map beyond the trace ring buffer: ops, hashes, task structs and return stacks. */
export const DIRECT_MAP_SLACK = 8 * 1024 * 1024;
/** Task stacks live in vmalloc space, with unmapped guard pages between them. */
export const VMALLOC_START = 0xffffc90000000000n;
export const THREAD_SIZE = 16 * 1024;
export const STACK_STRIDE = THREAD_SIZE + 2 * 4096;
/** Per-CPU areas (addressed through %gs). */
export const PERCPU_BASE = 0xffffffff84000000n;
export const PERCPU_STRIDE = 0x1000;

/* struct ftrace_ops, as the guest sees it (v3.18's essentials). */
export const OPS = {
  FUNC: 0, // ftrace_func_t func
  NEXT: 8, // struct ftrace_ops *next
  FLAGS: 16, // unsigned long flags
  PRIVATE: 24, // void *private: here, the ops' struct ftrace_ops_stats
  TRAMPOLINE: 32, // unsigned long trampoline
  TRAMPOLINE_SIZE: 40, // unsigned long trampoline_size
  FILTER_HASH: 48, // struct ftrace_hash *filter_hash (NULL or count 0: all functions)
  NOTRACE_HASH: 56, // struct ftrace_hash *notrace_hash
  SIZE: 64,
} as const;

/* Per-ops statistics kept by the guest callbacks, reached through ops->private. */
export const STATS = { INVOCATIONS: 0, SIZE: 16 } as const;

/* struct ftrace_hash { size_bits; count; buckets } and struct ftrace_func_entry { next; ip }. */
export const HASH = { SIZE_BITS: 0, COUNT: 8, BUCKETS: 16, SIZE: 24 } as const;
export const HASH_ENTRY = { NEXT: 0, IP: 8, SIZE: 16 } as const;
/** hash_long()'s multiplier (include/linux/hash.h, GOLDEN_RATIO_64). */
export const GOLDEN_RATIO_64 = 0x61c8864680b583ebn;

/* Flags of struct ftrace_ops: bit n is the n-th name (the simulator's own values). */
const OPS_FLAG_NAMES = [
  'ENABLED', 'DYNAMIC', 'SAVE_REGS', 'SAVE_REGS_IF_SUPPORTED', 'RECURSION_SAFE', 'STUB', 'INITIALIZED',
  'DELETED', 'ADDING', 'REMOVING', 'MODIFYING', 'ALLOC_TRAMP', 'IPMODIFY',
] as const;
export const FTRACE_OPS_FL = Object.fromEntries(OPS_FLAG_NAMES.map((n, i) => [n, 1n << BigInt(i)])) as Record<(typeof OPS_FLAG_NAMES)[number], bigint>;
/**
 * The flags a scenario may give an ops; the rest are ftrace's own bookkeeping.
 * SAVE_REGS_IF_SUPPORTED matters only on an arch without
 * DYNAMIC_FTRACE_WITH_REGS: x86 has it, so alone it asks for nothing, as in
 * the kernel. IPMODIFY exists from v3.19 (era rules).
 */
export const USER_OPS_FLAGS = ['SAVE_REGS', 'SAVE_REGS_IF_SUPPORTED', 'RECURSION_SAFE', 'IPMODIFY'] as const;
export type OpsFlagName = keyof typeof FTRACE_OPS_FL;

/*
 * struct dyn_ftrace { ip; flags } in guest memory, with the ~v4.x flag layout:
 * the low 25 bits count the ops tracing the site. Values are unsigned; see
 * records.ts for the arithmetic that keeps them so.
 */
export const DYN_FTRACE = { IP: 0, FLAGS: 8, SIZE: 16 } as const;
export const FTRACE_FL = {
  ENABLED: 0x8000_0000,
  REGS: 0x4000_0000,
  REGS_EN: 0x2000_0000,
  TRAMP: 0x1000_0000,
  TRAMP_EN: 0x0800_0000,
  IPMODIFY: 0x0400_0000,
  DISABLED: 0x0200_0000,
} as const;
export const FTRACE_REF_MAX = 0x01ff_ffff;

/* struct pt_regs (arch/x86/include/uapi/asm/ptrace-abi.h). */
export const PT_REGS = {
  R15: 0, R14: 8, R13: 16, R12: 24, RBP: 32, RBX: 40, R11: 48, R10: 56,
  R9: 64, R8: 72, RAX: 80, RCX: 88, RDX: 96, RSI: 104, RDI: 112, ORIG_RAX: 120,
  RIP: 128, CS: 136, EFLAGS: 144, RSP: 152, SS: 160, FRAME_SIZE: 168,
} as const;
export const __KERNEL_CS = 0x10n;
export const __KERNEL_DS = 0x18n;

/*
 * The trace ring buffer: one 72-byte entry per callback invocation. KIND and
 * CPU are 16-bit, PID 32-bit (the current task's, as struct trace_entry has).
 * TS is the writing CPU's trace clock when the entry was reserved (the
 * kernel's ring buffer reads trace_clock_local() itself, in rb_reserve_next_event()).
 */
export const TRACE_ENTRY = {
  SEQ: 0, IP: 8, PARENT_IP: 16, OP: 24, REGS: 32, KIND: 40, CPU: 42, PID: 44, AUX0: 48, AUX1: 56, TS: 64, SIZE: 72,
} as const;
/** Which built-in callback wrote an entry (TRACE_ENTRY.KIND). */
export const CALLBACK_KIND = { function_trace: 1, counter: 2, kprobe_regs: 3, function_graph: 4 } as const;
/**
 * The function_graph tracer writes two kinds of entry: its entry event has
 * KIND function_graph (4), its return event this one. Both carry ip = the
 * traced function, parent ip = the return address ret_stack kept, op = the
 * graph ops, regs = the depth (low 32 bits, signed) and the task's pid
 * (high 32 bits), aux0 = calltime, aux1 = rettime (0 on entry).
 */
export const KIND_GRAPH_RETURN = 5;
export type CallbackName = keyof typeof CALLBACK_KIND;
/**
 * Whether the kernel's ops for each callback is FTRACE_OPS_FL_RECURSION_SAFE:
 * the function tracer's, the self-test probes' and the graph tracer's are;
 * kprobes' is not.
 */
export const CALLBACK_RECURSION_SAFE: Record<CallbackName, boolean> = { function_trace: true, counter: true, kprobe_regs: false, function_graph: true };
export const CALLBACK_FUNC: Record<CallbackName, string> = {
  function_trace: 'function_trace_call',
  counter: 'ftrace_count_probe',
  kprobe_regs: 'kprobe_ftrace_handler',
  // v3.18's graph_ops.func: the graph tracer works through ftrace_graph_call, not its ops' callback.
  function_graph: 'ftrace_stub',
};

/* The model's struct file: enough for read and write to move real bytes. */
export const FILE = { POS: 0, DATA: 8, SIZE: 16, CSUM: 24, STRUCT_SIZE: 32 } as const;
/* System call numbers (x86-64) of the model's sys_call_table. */
export const NR = { read: 0, write: 1, getpid: 39, syscalls: 40 } as const;

/* Per-CPU area fields (%gs-relative). */
/*
 * Per-CPU data. RECURSION is current->trace_recursion and PREEMPT_COUNT the
 * running task's preempt count: the scheduler swaps both with the task, so
 * they are per task, as in the kernel. CURRENT_TASK is `current`.
 */
export const PERCPU = { CPU_NUMBER: 0, RECURSION: 8, CURRENT_PID: 16, CURRENT_TASK: 24, TRACE_CLOCK: 32, PREEMPT_COUNT: 40 } as const;
/** trace_recursion bits (kernel/trace/trace.h, v3.x): the list function's, in normal task context. */
export const TRACE_RECURSION = { LIST_NORMAL_BIT: 11 } as const;
/*
 * The part of struct task_struct the graph tracer uses: the task's return
 * stack (ret_stack, FTRACE_RETFUNC_DEPTH entries of struct ftrace_ret_stack)
 * and its index curr_ret_stack (-1 when empty). %gs:PERCPU_CURRENT_TASK is
 * `current`.
 */
export const TASK = { PID: 0, CURR_RET_STACK: 8, RET_STACK: 16, TRACE_OVERRUN: 24, SIZE: 64 } as const;
/** struct ftrace_ret_stack, with retp: the stack slot whose return address was replaced. */
export const RET_STACK = { RET: 0, FUNC: 8, CALLTIME: 16, SUBTIME: 24, FP: 32, RETP: 40, SIZE: 48 } as const;
export const FTRACE_RETFUNC_DEPTH = 50;
/** set_graph_notrace makes curr_ret_stack this much negative while a notrace function runs. */
export const FTRACE_NOTRACE_DEPTH = 65536;


/** Every constant above that the x86 sources use, as assembler symbols. */
export function abiSymbols(): Map<string, bigint> {
  const m = new Map<string, bigint>();
  const put = (prefix: string, o: Record<string, number | bigint>) => {
    for (const [k, v] of Object.entries(o)) m.set(`${prefix}${k}`, BigInt(v));
  };
  put('OPS_', OPS);
  put('STATS_', STATS);
  put('HASH_', HASH);
  put('HASH_ENTRY_', HASH_ENTRY);
  put('FTRACE_OPS_FL_', FTRACE_OPS_FL);
  put('PT_', PT_REGS);
  put('TE_', TRACE_ENTRY);
  put('KIND_', CALLBACK_KIND);
  put('PERCPU_', PERCPU);
  put('TASK_', TASK);
  put('RET_STACK_', RET_STACK);
  m.set('FTRACE_RETFUNC_DEPTH', BigInt(FTRACE_RETFUNC_DEPTH));
  m.set('FTRACE_NOTRACE_DEPTH', BigInt(FTRACE_NOTRACE_DEPTH));
  m.set('KIND_GRAPH_RETURN', BigInt(KIND_GRAPH_RETURN));
  put('TRACE_RECURSION_', TRACE_RECURSION);
  put('FILE_', FILE);
  put('NR_', NR);
  m.set('__KERNEL_CS', __KERNEL_CS);
  m.set('__KERNEL_DS', __KERNEL_DS);
  return m;
}
