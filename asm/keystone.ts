// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * keystone-wasm, driven through the module heap.
 *
 * Keystone's own asm() copies the source onto a 64 KiB wasm stack and breaks
 * on large sources, and setOption() makes bare decimals hex: we never call it,
 * and every source starts with `.att_syntax` instead.
 */
import { setFlagsFromString } from 'node:v8';
import { Keystone, loadKeystone } from 'keystone-wasm';

interface KeystoneModule {
  _malloc(n: number): number;
  _free(p: number): void;
  _ks_asm(h: number, src: number, address: bigint, outBytes: number, outSize: number, outStat: number): number;
  _ks_free(p: number): void;
  HEAPU8: Uint8Array;
  getValue(p: number, type: string): number;
}

const KS_ARCH_X86 = 4;
const KS_MODE_64 = 8;
export const KS_ERR_ASM_SYMBOL_MISSING = 144;

export class KeystoneError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'KeystoneError';
  }
}

let module: KeystoneModule | undefined;
let engine: Keystone | undefined;
const encoder = new TextEncoder();

export async function initKeystone(): Promise<void> {
  if (engine) return;
  const m = {} as KeystoneModule;
  // Keystone runs a few dozen short assemblies per boot: V8's optimising wasm
  // tier would compile its 3 MB module for nothing. Baseline code only, for
  // this module: measured 30 MB less peak RSS and 0.2 s less CPU per process.
  setFlagsFromString('--liftoff-only');
  try {
    await loadKeystone(m as unknown as Record<string, unknown>);
  } finally {
    setFlagsFromString('--no-liftoff-only');
  }
  if (typeof m._ks_asm !== 'function') throw new Error('keystone-wasm did not expose its module (is it loaded twice?)');
  module = m;
  engine = new Keystone(KS_ARCH_X86, KS_MODE_64);
}

/** Assembles AT&T source placed at `address`. Throws KeystoneError. */
export function ksAssemble(source: string, address: bigint): Uint8Array {
  if (!module || !engine) throw new Error('initKeystone() must be awaited first');
  const M = module;
  const text = encoder.encode('.att_syntax\n' + source + '\n\0');
  const src = M._malloc(text.length);
  const out = M._malloc(16);
  if (!src || !out) throw new KeystoneError(1, 'keystone heap exhausted: assemble smaller chunks');
  try {
    M.HEAPU8.set(text, src);
    const err = M._ks_asm(engine.handle, src, BigInt.asUintN(64, address), out, out + 4, out + 8);
    if (err !== 0) {
      const code = engine.errNo();
      throw new KeystoneError(code, Keystone.strError(code));
    }
    const bytesPtr = M.getValue(out, '*');
    const len = M.getValue(out + 4, 'i32');
    const bytes = M.HEAPU8.slice(bytesPtr, bytesPtr + len);
    M._ks_free(bytesPtr);
    return bytes;
  } finally {
    M._free(src);
    M._free(out);
  }
}
