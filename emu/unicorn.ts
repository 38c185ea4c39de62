// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small, flat binding to Unicorn 2 (Debian's libunicorn2 2.0.1, or any
 * later 2.x such as 2.1.4) through koffi.
 *
 * Only what the simulator uses is declared. Everything above this file talks to
 * Engine (engine.ts); this file only knows C signatures and constants.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

const require = createRequire(import.meta.url);
// koffi is CommonJS; its typings describe the default export.
const koffi = require('koffi') as typeof import('koffi');

export const UC_ARCH_X86 = 4;
export const UC_MODE_64 = 1 << 3;

export const UC_ERR = {
  OK: 0,
  NOMEM: 1,
  HANDLE: 3,
  READ_UNMAPPED: 6,
  WRITE_UNMAPPED: 7,
  FETCH_UNMAPPED: 8,
  HOOK: 9,
  INSN_INVALID: 10,
  MAP: 11,
  WRITE_PROT: 12,
  READ_PROT: 13,
  FETCH_PROT: 14,
  ARG: 15,
  EXCEPTION: 21,
} as const;

export const UC_HOOK = {
  INTR: 1 << 0,
  CODE: 1 << 2,
  BLOCK: 1 << 3,
  MEM_READ_UNMAPPED: 1 << 4,
  MEM_WRITE_UNMAPPED: 1 << 5,
  MEM_FETCH_UNMAPPED: 1 << 6,
  MEM_READ_PROT: 1 << 7,
  MEM_WRITE_PROT: 1 << 8,
  MEM_FETCH_PROT: 1 << 9,
  INSN_INVALID: 1 << 14,
  /** 2.1 and later: called to fill the TLB when the TLB type is UC_TLB_VIRTUAL. */
  TLB_FILL: 1 << 17,
} as const;
export const UC_HOOK_MEM_INVALID =
  UC_HOOK.MEM_READ_UNMAPPED |
  UC_HOOK.MEM_WRITE_UNMAPPED |
  UC_HOOK.MEM_FETCH_UNMAPPED |
  UC_HOOK.MEM_READ_PROT |
  UC_HOOK.MEM_WRITE_PROT |
  UC_HOOK.MEM_FETCH_PROT;

/** uc_mem_type values passed to invalid-memory and TLB-fill hooks. */
export const UC_MEM = {
  READ: 16,
  WRITE: 17,
  FETCH: 18,
  READ_UNMAPPED: 19,
  WRITE_UNMAPPED: 20,
  FETCH_UNMAPPED: 21,
  WRITE_PROT: 22,
  READ_PROT: 23,
  FETCH_PROT: 24,
} as const;

export const UC_PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4, ALL: 7 } as const;
/* UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2) and UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0) */
export const UC_CTL_TB_REMOVE_CACHE = 0x48000009;
export const UC_CTL_TB_FLUSH = 0x4000000a;
/* 2.1 and later: UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0) and UC_CTL_WRITE(UC_CTL_TLB_TYPE, 1) */
export const UC_CTL_TLB_FLUSH = 0x4000000b;
export const UC_CTL_TLB_TYPE = 0x4400000c;
export const UC_TLB_CPU = 0;
export const UC_TLB_VIRTUAL = 1;

/** Register ids from unicorn/x86.h (checked against the 2.0.1 header). */
export const X86_REG = {
  rax: 35, rbx: 37, rcx: 38, rdx: 40, rsi: 43, rdi: 39, rbp: 36, rsp: 44,
  r8: 106, r9: 107, r10: 108, r11: 109, r12: 110, r13: 111, r14: 112, r15: 113,
  rip: 41, rflags: 253, fs_base: 250, gs_base: 251,
  cr0: 50, cr2: 52, cr3: 53, cr4: 54,
} as const;
/** UC_X86_REG_MSR: read and written through a { u32 id; u64 value } buffer. */
export const UC_X86_REG_MSR = 248;
export type RegName = keyof typeof X86_REG;
export const GENERAL_REGS: readonly RegName[] = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
];

export type Pointer = unknown; // an opaque koffi pointer

const projectRoot = packageRoot(import.meta.url);
/** Where `scripts/ensure-libunicorn.mjs` unpacks the library when it cannot install it. */
export const LOCAL_LIBUNICORN = join(projectRoot, '.cache', 'libunicorn', 'usr', 'lib', 'x86_64-linux-gnu', 'libunicorn.so.2');

export class UnicornUnavailableError extends Error {
  constructor(tried: string[], cause: string) {
    super(
      `libunicorn 2 could not be loaded (tried ${tried.join(', ')}): ${cause}\n` +
        `Run \`npm run setup\` (as root it runs: apt-get update && apt-get install -y libunicorn2).`,
    );
    this.name = 'UnicornUnavailableError';
  }
}

/** The path of the libunicorn that was loaded (the watchdog thread loads the same). */
export let libraryPath = '';

function loadLibrary() {
  const candidates = [process.env.FTRACE_SIM_LIBUNICORN, LOCAL_LIBUNICORN, 'libunicorn.so.2'].filter(
    (p): p is string => !!p && (p === 'libunicorn.so.2' || existsSync(p)),
  );
  let last = 'not found';
  for (const path of candidates) {
    try {
      const lib = koffi.load(path);
      libraryPath = path;
      return lib;
    } catch (e) {
      last = (e as Error).message;
    }
  }
  throw new UnicornUnavailableError(candidates, last);
}

const lib = loadLibrary();

// Hook callback prototypes, anonymous: koffi's type names are process-wide,
// and a test runner may load this module more than once in one process.
// 64-bit values are declared uint64_t: koffi gives numbers for those (signed
// for kernel addresses), converted to bigint inside emu/ only.
export const HookCodeProto = koffi.proto('void (void *uc, uint64_t address, uint32_t size, intptr_t user_data)');
export const HookIntrProto = koffi.proto('void (void *uc, uint32_t intno, intptr_t user_data)');
export const HookMemInvalidProto = koffi.proto('bool (void *uc, int type, uint64_t address, int size, int64_t value, intptr_t user_data)');
export const TlbEntry = koffi.struct({ paddr: 'uint64_t', perms: 'uint32_t' });
export const HookTlbFillProto = koffi.proto('bool (void *uc, uint64_t vaddr, int type, void *result, intptr_t user_data)');

export const uc = {
  version: lib.func('unsigned int uc_version(_Out_ unsigned int *major, _Out_ unsigned int *minor)'),
  open: lib.func('int uc_open(int arch, int mode, _Out_ void **uc)'),
  close: lib.func('int uc_close(void *uc)'),
  strerror: lib.func('const char *uc_strerror(int code)'),
  ctl: lib.func('int uc_ctl(void *uc, int control, ...)'),
  memMapPtr: lib.func('int uc_mem_map_ptr(void *uc, uint64_t address, size_t size, uint32_t perms, void *ptr)'),
  memUnmap: lib.func('int uc_mem_unmap(void *uc, uint64_t address, size_t size)'),
  memProtect: lib.func('int uc_mem_protect(void *uc, uint64_t address, size_t size, uint32_t perms)'),
  regRead: lib.func('int uc_reg_read(void *uc, int regid, _Out_ void *value)'),
  regWrite: lib.func('int uc_reg_write(void *uc, int regid, const void *value)'),
  emuStart: lib.func('int uc_emu_start(void *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count)'),
  emuStop: lib.func('int uc_emu_stop(void *uc)'),
  hookAdd: lib.func(
    'int uc_hook_add(void *uc, _Out_ size_t *hh, int type, void *callback, intptr_t user_data, uint64_t begin, uint64_t end, ...)',
  ),
  hookDel: lib.func('int uc_hook_del(void *uc, size_t hh)'),
};

export { koffi };

export function ucStrerror(code: number): string {
  return String(uc.strerror(code));
}

/** The loaded library's version, e.g. "2.1.4" (uc_version packs major.minor.patch.extra). */
export function ucVersion(): string {
  const packed = Number(uc.version(null, null));
  return `${(packed >>> 24) & 0xff}.${(packed >>> 16) & 0xff}.${(packed >>> 8) & 0xff}`;
}

/**
 * Unicorn 2.1 translates addresses through the guest's MMU (or a TLB-fill
 * hook) and masks flat ones to the physical width; 2.0 checks every access
 * against regions mapped at the virtual address. emu/ adapts to each.
 */
export const UC_AT_LEAST_2_1 = (() => {
  const packed = Number(uc.version(null, null));
  return ((packed >>> 24) & 0xff) > 2 || (((packed >>> 24) & 0xff) === 2 && ((packed >>> 16) & 0xff) >= 1);
})();
