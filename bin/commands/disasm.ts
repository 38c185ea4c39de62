// SPDX-License-Identifier: GPL-2.0-or-later
/* `ftrace-sim disasm`: disassemble guest memory at a symbol or address. */
import type { Command } from 'commander';
import { MAX_FUNCTIONS } from '../../kernel-model/limits.js';
import { say, UsageError, intOption, printJson } from '../output.js';

export function disasmCommand(program: Command): void {
  program
    .command('disasm')
    .description('disassemble the booted kernel at a symbol or address (kernel addresses as unsigned hex)')
    .argument('<where>', 'a symbol (vfs_read, ftrace_caller) or an address (0xffffffff81000000)')
    .option('--count <k>', 'instructions to show', '16')
    .option('--functions <n>', `generated functions in the kernel (0-${MAX_FUNCTIONS})`, '200')
    .option('--json', 'print the instructions as JSON')
    .action(async (where: string, opts: { count: string; functions: string; json?: boolean }) => {
      const count = intOption('--count', opts.count, 1, 10_000);
      const functions = intOption('--functions', opts.functions, 0, MAX_FUNCTIONS);
      const { boot } = await import('../../kernel-model/boot.js');
      const { disassemble, formatInsn, initDisassembler } = await import('../../asm/disasm.js');
      const { kernel } = await boot({ functions });
      try {
        let addr: bigint;
        if (/^0x[0-9a-f]+$/i.test(where)) addr = BigInt(where);
        else {
          const s = kernel.symbols.get(where);
          if (!s) throw new UsageError(`unknown symbol '${where}' (try a function such as vfs_read or ftrace_caller)`);
          addr = s.address;
        }
        const region = kernel.memory.find(addr);
        if (!region) throw new UsageError(`address ${where} is not mapped`);
        const avail = Number(region.base + BigInt(region.size) - addr);
        await initDisassembler();
        const insns = disassemble(kernel.memory.read(addr, Math.min(avail, count * 15)), addr, count);
        if (opts.json) {
          return printJson(
            insns.map((i) => ({
              address: i.address,
              symbol: kernel.symbolize(i.address) ?? null,
              bytes: Buffer.from(i.bytes).toString('hex'),
              mnemonic: i.mnemonic,
              operands: i.operands,
              target: i.target ?? null,
              targetSymbol: i.target !== undefined ? (kernel.symbolize(i.target) ?? null) : null,
            })),
          );
        }
        for (const i of insns) say(formatInsn(i, (a) => kernel.symbolize(a)));
      } finally {
        kernel.close();
      }
    });
}
