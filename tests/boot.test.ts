// SPDX-License-Identifier: GPL-2.0-or-later
import { disassemble, initDisassembler } from '../asm/disasm.js';
import { GuestFault } from '../emu/index.js';
import { X86Ftrace } from '../kernel-model/arch/x86/ftrace.js';
import { boot } from '../kernel-model/boot.js';
import { Ftrace } from '../kernel-model/ftrace/core.js';
import { genFuncReference } from '../kernel-model/generate.js';
import { FILE_DATA_SIZE, Kernel, modelFileContents } from '../kernel-model/kernel.js';

beforeAll(async () => {
  await initDisassembler();
});

describe('boot', () => {
  test('every call site becomes the 5-byte NOP, read back from guest memory and decoded', async () => {
    const { kernel, ftrace } = await boot({ functions: 300 });
    try {
      expect(ftrace.records.length).toBe(kernel.program.mcountLoc.length);
      expect(ftrace.records.length).toBeGreaterThan(300);
      let prev = 0n;
      for (const rec of ftrace.records.all()) {
        expect(rec.ip).toBeGreaterThan(prev); // sorted, as available_filter_functions is
        prev = rec.ip;
        const [insn] = disassemble(kernel.memory.read(rec.ip, 5), rec.ip, 1);
        expect(insn!.mnemonic).toBe('nopl');
        expect(insn!.bytes.length).toBe(5);
        expect(kernel.symbols.lookup(rec.ip)!.offset).toBe(0); // fentry is the first instruction
      }
      for (const name of ['do_syscall_64', 'vfs_read', 'schedule', 'trace_selftest_dynamic_test_func', 'trace_selftest_dynamic_test_func2', 'gen_func_299']) {
        expect(ftrace.recordOf(name)).toBeDefined();
      }
    } finally {
      kernel.close();
    }
  });

  test('a corrupted call site is reported as ftrace_bug does, and boot goes on with ftrace disabled', async () => {
    const { kernel } = await Kernel.assemble({ functions: 10 });
    try {
      const site = kernel.sym('vfs_read');
      kernel.memory.write(site, Uint8Array.of(0xe8, 0x11, 0x22, 0x33, 0x44));
      const ftrace = new Ftrace(kernel, (k, loc) => new X86Ftrace(k, loc));
      ftrace.convertCallSitesToNop();
      expect(ftrace.disabled).toBe(true);
      const report = kernel.dmesg.join('\n');
      expect(report).toMatch(/ftrace failed to modify \[<0xffffffff81[0-9a-f]+>\] vfs_read\+0x0/);
      expect(report).toContain('actual:   e8 11 22 33 44');
      // Sites before it were converted; it and those after it were not.
      expect(ftrace.siteTarget(ftrace.recordOf('do_syscall_64')!).kind).toBe('nop');
      expect(ftrace.siteTarget(ftrace.recordOf('vfs_write')!)).toEqual({ kind: 'fentry', hook: '__fentry__' });
      // The kernel still runs: vfs_write calls __fentry__, which returns.
      expect(() => kernel.call('vfs_write', [kernel.sym('file_in'), kernel.userBuffer, 8n])).not.toThrow();
      const ops = ftrace.createOps({ name: 'tracer', callback: 'function_trace' });
      expect(ftrace.register_ftrace_function(ops)).toMatchObject({ ok: false, errno: 'ENODEV' });
    } finally {
      kernel.close();
    }
  });

  test('a guest fault surfaces as a typed error with RIP and symbol', async () => {
    const { kernel } = await boot({ functions: 10 });
    try {
      // copy_to_user(to = an unmapped address, from = the file data, n = 8)
      let f: unknown;
      try {
        kernel.call('copy_to_user', [0x1000n, kernel.sym('file_data'), 8n]);
      } catch (e) {
        f = e;
      }
      expect(f).toBeInstanceOf(GuestFault);
      const g = f as GuestFault;
      expect(g.kind).toBe('unmapped-write');
      expect(g.address).toBe(0x1000n);
      expect(g.symbol).toMatch(/^copy_to_user\+0x[0-9a-f]+$/);
      expect(g.rip).toBe(kernel.sym('copy_to_user') + BigInt(parseInt(g.symbol!.split('+')[1]!, 16)));
    } finally {
      kernel.close();
    }
  });

  test('workloads return results computed by the guest', async () => {
    const { kernel } = await boot({ functions: 500 });
    try {
      // 7 iterations of read(3, 64) + write(4, 64) + getpid(): 64 + 64 + pid 1.
      expect(kernel.call('sim_workload_syscalls', [7n, kernel.userBuffer])).toBe(7n * 129n);
      // fd 4 summed the bytes written: the first 7*64 bytes of the file.
      const bytes = modelFileContents().subarray(0, 7 * 64);
      const sum = bytes.reduce((a, b) => a + b, 0);
      expect(kernel.memory.readU64(kernel.sym('file_out') + 24n)).toBe(BigInt(sum));
      expect(FILE_DATA_SIZE % 64).toBe(0);
      // The generated call graph, checked against the same recurrence computed on the host.
      let want = 0n;
      for (let k = 0n; k < 3n; k++) want = (want + genFuncReference(499, 11n + k)) & ((1n << 64n) - 1n);
      expect(kernel.call('sim_workload_callgraph', [3n, 11n])).toBe(want);
    } finally {
      kernel.close();
    }
  });

  test('a bad function count is refused with a clear error', async () => {
    await expect(boot({ functions: -1 })).rejects.toThrow(/functions must be a whole number/);
  });
});
