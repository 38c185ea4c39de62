// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host reads kernel structures out of guest memory (hashes, ops,
 * trampolines) to print and check them. Guest memory can hold anything a
 * scenario wrote there, so every such read is bounded and validated, and a
 * structure that cannot be what the kernel built is reported as corrupted,
 * naming it and where it is, instead of looping or crashing the host.
 */
import { hex } from '../emu/index.js';
import type { GuestMemory } from '../emu/index.js';

export class KernelDataCorrupted extends Error {
  constructor(
    readonly structure: string,
    readonly address: bigint,
    readonly reason: string,
  ) {
    super(`kernel data corrupted: ${structure} at ${hex(address)}: ${reason}`);
    this.name = 'KernelDataCorrupted';
  }
}

/** Throws unless [address, address + length) is mapped guest memory. */
export function expectMapped(memory: GuestMemory, structure: string, address: bigint, length: number): void {
  if (!memory.find(address, length)) throw new KernelDataCorrupted(structure, address, `${length} bytes there are not mapped memory`);
}
