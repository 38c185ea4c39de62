// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Hostile and careless input: every one ends with exit 0, 1 or 2 (4 for a
 * budget), a message that names its place, quickly, and never an internal
 * error, a hang or a stack trace.
 */
import { OPS } from '../kernel-model/abi.js';
import { KernelDataCorrupted } from '../kernel-model/corruption.js';
import { readGuestHash, setFtraceHash } from '../kernel-model/views/tracefs.js';
import { loadScenarioFile, loadScenarioText } from '../scenarios/engine/load.js';
import { cli, loadError as loadErrorOf, tempFile as file, withKernel } from './helpers.js';
import { runScenario } from '../scenarios/engine/run.js';

const loadError = (text: string) => loadErrorOf(text, 'h.yaml');

const head = 'name: h\nops:\n  - { name: t, callback: function_trace }\nsteps:\n';

describe('scenario files that would exhaust the host', () => {
  test('a YAML alias bomb is refused with the file and line', () => {
    const bomb =
      'name: h\nx0: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n' +
      Array.from({ length: 8 }, (_, i) => `x${i + 1}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`).join('\n') +
      '\nsteps:\n  - call: vfs_read\n';
    const e = loadError(bomb);
    expect(e.message).toMatch(/^h\.yaml:1: YAML: .*alias/i);
  });

  test('a file over the size limit is refused before it is parsed; --max-file-size raises the limit', async () => {
    const big = file('big.yaml', head + '  - call: vfs_read\n' + `# ${'x'.repeat(2000)}\n`);
    expect(() => loadScenarioFile(big, 'big.yaml', 1000)).toThrow(/^big\.yaml:1: the file is \d+ bytes; scenario files are limited to 1000/);
    const small = await cli('--max-file-size', '1000', 'run', big);
    expect(small.code).toBe(2);
    expect(small.err).toMatch(/limited to 1000 \(--max-file-size raises it\)/);
    const raised = await cli('--max-file-size', '100000', 'run', big, '--json');
    expect(raised.code).toBe(0);
  });

  test.each([
    ['a list longer than its limit', head + '  - corrupt: { at: vfs_read, bytes: [' + Array(5000).fill('1').join(',') + '] }\n', 5, 'steps[0].corrupt.bytes'],
    ['an offset past every region', head + '  - corrupt: { at: vfs_read, offset: 268435456, bytes: [1] }\n', 5, 'steps[0].corrupt.offset'],
    ['an offset of 1e30', head + '  - corrupt: { at: vfs_read, offset: 1e30, bytes: [1] }\n', 5, 'steps[0].corrupt.offset'],
    ['a call repeated past its limit', head + '  - call: { function: vfs_read, times: 1000001 }\n', 5, 'steps[0].call.times'],
    ['a run past its limit', head + '  - run: { workload: syscalls, iterations: 1000000 }\n', 5, 'steps[0].run.iterations'],
  ])('%s is bad input with its place', (_what, text, line, key) => {
    const e = loadError(text);
    expect(e.where).toMatchObject({ line, key });
  });
});

describe('names and references, all resolved before anything runs', () => {
  test('a step naming a destroyed ops is bad input that names the destroy', () => {
    const e = loadError(head + '  - register: t\n  - unregister: t\n  - destroy: t\n  - register: t\n');
    expect(e.message).toBe("h.yaml:8: steps[3].register.ops: ops 't' was destroyed at line 7");
    expect(() => loadScenarioText(head + '  - register: t\n  - destroy: { ops: t, expect_error: EBUSY }\n  - unregister: t\n', 'h.yaml')).not.toThrow();
  });

  test('corrupt writes kernel text only, and within it', async () => {
    const data = loadScenarioText(head + '  - corrupt: { at: function_trace_op, bytes: [1] }\n', 'd.yaml');
    await expect(runScenario(data)).rejects.toThrow(/^d\.yaml:5: steps\[0\]\.corrupt\.at: 'function_trace_op' is not a symbol of the kernel's text/);
    const past = loadScenarioText(head + '  - corrupt: { at: vfs_read, offset: 16000000, bytes: [1] }\n', 'p.yaml');
    await expect(runScenario(past)).rejects.toThrow(/^p\.yaml:5: steps\[0\]\.corrupt\.offset: vfs_read\+16000000 and 1 bytes run past the end of the kernel's text/);
  });

  test("a bad name in a later file stops the run before the first file's scenario runs", async () => {
    const bad = file('later.yaml', 'name: later\nsteps:\n  - call: no_such_function\n');
    const r = await cli('run', 'function-tracer', bad, '--json');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain("later.yaml:3: steps[0].call: unknown function 'no_such_function'");
  });

  test('ftrace_call must name an ops or a kernel function', async () => {
    const r = await cli('run', file('fc.yaml', head + '  - expect: { ftrace_call: nonsense }\n'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/fc\.yaml:5: steps\[0\]\.expect\.ftrace_call: 'nonsense' is neither an ops/);
  });

  test('kprobe_regs without SAVE_REGS is bad input', () => {
    const e = loadError('name: h\nops:\n  - { name: kp, callback: kprobe_regs }\nsteps:\n  - register: kp\n');
    expect(e.where).toMatchObject({ line: 3, key: 'ops[0].flags' });
  });
});

describe('call arguments are 64-bit values', () => {
  const args = (list: string) => {
    const s = loadScenarioText(head + `  - call: { function: copy_to_user, args: [${list}] }\n`, 'a.yaml');
    const step = s.steps[0]!;
    return step.kind === 'call' ? step.args : undefined;
  };
  test('integers above 2^53 keep every bit', () => {
    expect(args('0xffffffff81000123, 18446744073709551615, -1')).toEqual([0xffffffff81000123n, 0xffffffffffffffffn, 0xffffffffffffffffn]);
  });
  test('wider than 64 bits, or not whole, is bad input with its own message', () => {
    expect(loadError(head + '  - call: { function: vfs_read, args: [0x10000000000000000] }\n').message).toMatch(/args\[0\]: 0x10000000000000000 does not fit in a 64-bit register/);
    expect(loadError(head + '  - call: { function: vfs_read, args: [1.5] }\n').message).toMatch(/args\[0\]: expected a whole number, a 0x… number or &symbol/);
  });
});

describe("the host's reading of guest structures is bounded", () => {
  test('a self-linked hash chain is reported as corrupted, not walked forever', async () => {
    await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
      const ops = ftrace.createOps({ name: 'p', callback: 'counter' });
      ftrace.ftrace_set_filter(ops, ['vfs_read']);
      const hash = kernel.memory.readU64(ops.addr + BigInt(OPS.FILTER_HASH));
      const [entry] = readGuestHash(kernel, hash);
      expect(entry).toBe(kernel.sym('vfs_read'));
      // Make the one entry point at itself.
      const buckets = kernel.memory.readU64(hash + 16n);
      const e = kernel.memory.readU64(buckets);
      kernel.memory.writeU64(e, e);
      expect(() => setFtraceHash(kernel, ops, 'filter')).toThrow(KernelDataCorrupted);
      expect(() => readGuestHash(kernel, hash)).toThrow(/kernel data corrupted: ftrace_hash at 0x[0-9a-f]+: its chains hold more than its count of 1 entries/);
      kernel.memory.writeU64(hash + 16n, 0x10n);
      expect(() => readGuestHash(kernel, hash)).toThrow(/ftrace_hash buckets at 0x10: 8 bytes there are not mapped memory/);
    });
  });

  test('a corrupted trampoline_size is reported, not allocated', async () => {
    await withKernel({ functions: 10 }, ({ kernel, ftrace }) => {
      const ops = ftrace.createOps({ name: 'p', callback: 'counter' });
      kernel.memory.writeU64(ops.addr + BigInt(OPS.TRAMPOLINE_SIZE), 0x7fffffffffffffffn);
      expect(() => ops.trampolineSize).toThrow(/kernel data corrupted: ftrace_ops at .*p's trampoline_size is 9223372036854775807/);
    });
  });
});

describe('a guest fault names the instruction that faulted', () => {
  test.each([
    // copy_to_user+0x8 is `rep movsb` after a `movq %rdx, %rcx` in the same block.
    ['a store', 'copy_to_user', '[0x10, "&file_data", 8]', /^guest fault: unmapped-write at 0x10, rip 0x[0-9a-f]+ <copy_to_user\+0x8>/],
    // new_sync_read+0x9 reads file->pos through the file pointer vfs_read was given.
    ['a load', 'vfs_read', '[0x10, 0, 8]', /^guest fault: unmapped-read at 0x20, rip 0x[0-9a-f]+ <new_sync_read\+0x9>/],
  ])('%s, not the start of its translation block', async (_what, fn, args, want) => {
    const r = await runScenario(loadScenarioText(`name: f\nsteps:\n  - call: { function: ${fn}, args: ${args} }\n`, 'f.yaml'));
    expect(r.checks.at(-1)!.detail).toMatch(want);
  });
});

describe('runs that do not end', () => {
  test('a guest that loops exhausts its budget: reported as such, with exit 4', async () => {
    // `jmp .` over vfs_read's call site.
    const loop = file('loop.yaml', 'name: loop\nconfig: { budget_ms: 200 }\nsteps:\n  - corrupt: { at: vfs_read, bytes: [0xeb, 0xfe] }\n  - call: vfs_read\n');
    const r = await cli('run', loop, '--json');
    expect(r.code).toBe(4);
    const [res] = (JSON.parse(r.out) as { scenarios: { budgetExceeded: boolean; fault: { kind: string }; checks: { detail: string }[] }[] }).scenarios;
    expect(res!.budgetExceeded).toBe(true);
    expect(res!.checks.at(-1)!.detail).toMatch(/^budget exceeded: .* in vfs_read\+0x0/);
  });

  test('explain reports a guest fault as a failed kernel (exit 1), not an internal error', async () => {
    const ud2 = file('ud2.yaml', 'name: ud2\nsteps:\n  - corrupt: { at: vfs_read, bytes: [0x0f, 0x0b, 0x90, 0x90, 0x90] }\n');
    const r = await cli('explain', ud2, '--function', 'vfs_read');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ftrace-sim: guest fault: invalid-instruction/);
  });
});

describe('the command line', () => {
  test('torture --changes has an upper bound', async () => {
    expect((await cli('torture', '--changes', '10000000')).code).toBe(2);
  });

});
