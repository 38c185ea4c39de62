// SPDX-License-Identifier: GPL-2.0-or-later
/* How addresses and bytes are written everywhere: unsigned 64-bit hex, and `0f 1f 44` byte lists. */

export function hex(v: bigint | number): string {
  return '0x' + BigInt.asUintN(64, BigInt(v)).toString(16);
}

export function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
