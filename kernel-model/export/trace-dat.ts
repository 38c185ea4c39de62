// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A trace-cmd `trace.dat` file, version 6 (trace-cmd.dat.v6(5)), written from
 * a description of the trace: what `trace-cmd record` would have saved from a
 * machine whose ring buffer held these events. Pure: bytes in, bytes out.
 *
 * Each CPU's events go into ring-buffer pages as the kernel's ring buffer
 * lays them out (kernel/trace/ring_buffer.c): a page header (timestamp,
 * commit), then events, each behind a 32-bit header of type_len:5 and
 * time_delta:27; a delta too large for 27 bits is carried by a time-extend
 * event before it.
 */

/** The ftrace event ids, as TRACE_FN and TRACE_GRAPH_ENT/RET number them (kernel/trace/trace.h). */
export const FTRACE_EVENT_ID = { function: 1, funcgraph_exit: 10, funcgraph_entry: 11 } as const;

export interface FunctionEventRecord {
  /** Trace-clock time, in nanoseconds. */
  tsNs: bigint;
  cpu: number;
  pid: number;
  ip: bigint;
  parentIp: bigint;
}

export interface KallsymsEntry {
  address: bigint;
  /** nm-style type: T/t text, D/d data. */
  type: string;
  name: string;
  /** A module's name, printed as `[name]`. */
  module?: string;
}

export interface TraceDatInput {
  cpus: number;
  /** Function tracer events; any order (each CPU's are sorted by time). */
  events: readonly FunctionEventRecord[];
  kallsyms: readonly KallsymsEntry[];
  /** saved_cmdlines: pid -> comm. */
  cmdlines: ReadonlyMap<number, string>;
  /** The traced machine's page size: also the size of a ring-buffer page. */
  pageSize?: number;
}

export const RINGBUF_TYPE = { PADDING: 29, TIME_EXTEND: 30, TIME_STAMP: 31, DATA_TYPE_LEN_MAX: 28 } as const;
const TS_SHIFT = 27n;
const TS_MASK = (1n << TS_SHIFT) - 1n;
/** struct buffer_data_page: u64 time_stamp, local_t commit, then data. */
const PAGE_HEADER_SIZE = 16;

/** events/header_page, as ring_buffer_print_page_header() prints it on x86-64. */
export function headerPageFormat(pageSize: number): string {
  return (
    '\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n' +
    '\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n' +
    '\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n' +
    `\tfield: char data;\toffset:16;\tsize:${pageSize - PAGE_HEADER_SIZE};\tsigned:1;\n`
  );
}

/** events/header_event, as ring_buffer_print_entry_header() prints it. */
export function headerEventFormat(): string {
  return (
    '# compressed entry header\n' +
    '\ttype_len    :    5 bits\n' +
    '\ttime_delta  :   27 bits\n' +
    '\tarray       :   32 bits\n' +
    '\n' +
    `\tpadding     : type == ${RINGBUF_TYPE.PADDING}\n` +
    `\ttime_extend : type == ${RINGBUF_TYPE.TIME_EXTEND}\n` +
    `\ttime_stamp : type == ${RINGBUF_TYPE.TIME_STAMP}\n` +
    `\tdata max type_len  == ${RINGBUF_TYPE.DATA_TYPE_LEN_MAX}\n`
  );
}

const COMMON_FIELDS =
  '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n' +
  '\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n' +
  '\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n' +
  '\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n';

/** events/ftrace/<name>/format for the ftrace events this file can hold. */
export function ftraceEventFormats(): string[] {
  return [
    `name: function\nID: ${FTRACE_EVENT_ID.function}\nformat:\n` +
      COMMON_FIELDS +
      '\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n' +
      '\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;\n\n' +
      'print fmt: " %ps <-- %ps", (void *)REC->ip, (void *)REC->parent_ip\n',
    `name: funcgraph_exit\nID: ${FTRACE_EVENT_ID.funcgraph_exit}\nformat:\n` +
      COMMON_FIELDS +
      '\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n' +
      '\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n' +
      '\tfield:unsigned int overrun;\toffset:20;\tsize:4;\tsigned:0;\n' +
      '\tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;\n' +
      '\tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;\n\n' +
      'print fmt: "<-- %ps (%d) (start: %llx  end: %llx) over: %d", (void *)REC->func, REC->depth, REC->calltime, REC->rettime, REC->depth\n',
    `name: funcgraph_entry\nID: ${FTRACE_EVENT_ID.funcgraph_entry}\nformat:\n` +
      COMMON_FIELDS +
      '\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n' +
      '\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n\n' +
      'print fmt: "--> %ps (%d)", (void *)REC->func, REC->depth\n',
  ];
}

/** /proc/kallsyms text: `address type name [module]`, one symbol a line. */
export function kallsymsText(syms: readonly KallsymsEntry[]): string {
  return syms.map((s) => `${s.address.toString(16).padStart(16, '0')} ${s.type} ${s.name}${s.module ? `\t[${s.module}]` : ''}\n`).join('');
}

/** saved_cmdlines text: `pid comm`, one task a line. */
export function cmdlinesText(cmdlines: ReadonlyMap<number, string>): string {
  return [...cmdlines].sort(([a], [b]) => a - b).map(([pid, comm]) => `${pid} ${comm}\n`).join('');
}

/** A little-endian byte sink. */
class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;

  raw(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  str(s: string, nul = true): void {
    this.raw(new TextEncoder().encode(nul ? s + '\0' : s));
  }
  u8(v: number): void {
    this.raw(Uint8Array.of(v));
  }
  u16(v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    this.raw(b);
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.raw(b);
  }
  u64(v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    this.raw(b);
  }
  /** A text with its size in front, as 4 or 8 bytes. */
  sized(text: string, sizeBytes: 4 | 8): void {
    const b = new TextEncoder().encode(text);
    if (sizeBytes === 4) this.u32(b.length);
    else this.u64(BigInt(b.length));
    this.raw(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** Size of a `function` event's entry: struct trace_entry (8 bytes), then ip and parent_ip. */
const FUNCTION_ENTRY_SIZE = 24;

/** Writes a `function` event's entry at `o`. */
function putFunctionEntry(v: DataView, o: number, e: FunctionEventRecord): void {
  v.setUint16(o, FTRACE_EVENT_ID.function, true);
  v.setUint8(o + 2, 0); // common_flags: irqs on, no need-resched, not in an interrupt
  v.setUint8(o + 3, 0); // common_preempt_count
  v.setInt32(o + 4, e.pid, true);
  v.setBigUint64(o + 8, BigInt.asUintN(64, e.ip), true);
  v.setBigUint64(o + 16, BigInt.asUintN(64, e.parentIp), true);
}

export interface CpuPages {
  /** Whole pages, concatenated. */
  data: Uint8Array;
  pages: number;
  timeExtends: number;
}

/**
 * One CPU's ring-buffer pages. Each page starts with the time of its first
 * event; every event's header carries the delta from the one before.
 */
export function ringBufferPages(events: readonly FunctionEventRecord[], pageSize = 4096): CpuPages {
  // Worst case: a time extend before every event.
  const perPage = Math.max(1, Math.floor((pageSize - PAGE_HEADER_SIZE) / (4 + FUNCTION_ENTRY_SIZE + 8)));
  const data = new Uint8Array(Math.ceil(events.length / perPage) * pageSize);
  const v = new DataView(data.buffer);
  let pages = 0;
  let timeExtends = 0;
  let page = -1; // byte offset of the page being filled
  let used = 0;
  let last = 0n;
  const close = () => {
    if (page >= 0) v.setBigUint64(page + 8, BigInt(used), true); // commit: bytes of data in the page
  };
  const typeLen = FUNCTION_ENTRY_SIZE / 4;
  for (const e of events) {
    let delta = page >= 0 ? e.tsNs - last : 0n;
    if (delta < 0n) throw new RangeError(`events of CPU ${e.cpu} are not in time order`);
    const need = 4 + FUNCTION_ENTRY_SIZE + (delta > TS_MASK ? 8 : 0);
    if (page < 0 || used + need > pageSize - PAGE_HEADER_SIZE) {
      close();
      page = pages++ * pageSize;
      v.setBigUint64(page, e.tsNs, true);
      used = 0;
      delta = 0n;
    }
    let at = page + PAGE_HEADER_SIZE + used;
    if (delta > TS_MASK) {
      // RINGBUF_TYPE_TIME_EXTEND: the low 27 bits in time_delta, the rest in array[0].
      v.setUint32(at, RINGBUF_TYPE.TIME_EXTEND | Number((delta & TS_MASK) << 5n), true);
      v.setUint32(at + 4, Number(delta >> TS_SHIFT), true);
      at += 8;
      used += 8;
      timeExtends++;
      delta = 0n;
    }
    v.setUint32(at, typeLen | (Number(delta) << 5), true);
    putFunctionEntry(v, at + 4, e);
    used += 4 + FUNCTION_ENTRY_SIZE;
    last = e.tsNs;
  }
  close();
  return { data: data.subarray(0, pages * pageSize), pages, timeExtends };
}

export interface TraceDatStats {
  pages: number[];
  timeExtends: number;
  events: number;
}

/** The whole trace.dat file. */
export function writeTraceDat(input: TraceDatInput): { bytes: Uint8Array; stats: TraceDatStats } {
  const pageSize = input.pageSize ?? 4096;
  const b = new Bytes();
  b.raw(Uint8Array.of(0x17, 0x08, 0x44));
  b.str('tracing', false);
  b.str('6');
  b.u8(0); // little endian
  b.u8(8); // sizeof(long)
  b.u32(pageSize);
  b.str('header_page');
  b.sized(headerPageFormat(pageSize), 8);
  b.str('header_event');
  b.sized(headerEventFormat(), 8);
  const formats = ftraceEventFormats();
  b.u32(formats.length);
  for (const f of formats) b.sized(f, 8);
  b.u32(0); // event systems beside ftrace: none
  b.sized(kallsymsText(input.kallsyms), 4);
  b.sized('', 4); // printk formats
  b.sized(cmdlinesText(input.cmdlines), 8);
  b.u32(input.cpus);
  b.str('options  ');
  b.u16(0); // no options
  b.str('flyrecord');

  const perCpu: FunctionEventRecord[][] = Array.from({ length: input.cpus }, () => []);
  for (const e of input.events) {
    if (!Number.isInteger(e.cpu) || e.cpu < 0 || e.cpu >= input.cpus) throw new RangeError(`event on CPU ${e.cpu}, but the trace has ${input.cpus} CPUs`);
    perCpu[e.cpu]!.push(e);
  }
  const cpuPages = perCpu.map((evs) => ringBufferPages([...evs].sort((x, y) => (x.tsNs < y.tsNs ? -1 : x.tsNs > y.tsNs ? 1 : 0)), pageSize));
  // The CPU data starts at the first page boundary after the offsets table.
  const tableEnd = b.length + input.cpus * 16;
  let offset = Math.ceil(tableEnd / pageSize) * pageSize;
  for (const p of cpuPages) {
    b.u64(BigInt(offset));
    b.u64(BigInt(p.data.length));
    offset += p.data.length;
  }
  b.raw(new Uint8Array(Math.ceil(tableEnd / pageSize) * pageSize - tableEnd));
  for (const p of cpuPages) b.raw(p.data);
  return {
    bytes: b.concat(),
    stats: { pages: cpuPages.map((p) => p.pages), timeExtends: cpuPages.reduce((a, p) => a + p.timeExtends, 0), events: input.events.length },
  };
}
