// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What an `expect` step checks, on a variant's kernel too, and how its %rdx
 * check reports a callback that got the wrong ops: a call site is re-pointed
 * in guest memory between two steps, as a bad patch would.
 */
import { decodeBranch } from '../asm/encoding.js';
import { ftraceCallReplace } from '../kernel-model/arch/x86/insn.js';
import type { Kernel } from '../kernel-model/kernel.js';
import { loadScenarioText } from '../scenarios/engine/load.js';
import { inspectScenario, runScenario } from '../scenarios/engine/run.js';

/** The failed checks of a scenario whose call site is re-pointed after step `after`. */
async function failedAfterRepoint(text: string, after: number, site: string, target: (k: Kernel) => bigint): Promise<string[]> {
  let failed: string[] = [];
  let step = 0;
  const onBoot = (kernel: Kernel) => () => {
    if (step++ !== after) return;
    const ip = kernel.sym(site);
    kernel.machine.textPoke(ip, ftraceCallReplace(ip, target(kernel)));
  };
  await inspectScenario(loadScenarioText(text, 't.yaml'), undefined, (i) => void (failed = i.failedChecks.map((c) => `${c.name}: ${c.detail}`)), { onBoot });
  return failed;
}

test("a variant's kernel is held to what a callback sees, not to its call sites, trampolines and module space", async () => {
  const r = await runScenario(
    loadScenarioText(
      `name: t
config: { functions: 10, era: "3.18" }
eras: ["3.18"]
ops:
  - { name: a, callback: counter }
  - { name: kp, callback: kprobe_regs, flags: [SAVE_REGS] }
  - { name: g, callback: function_graph }
steps:
  - set_filter: { ops: a, patterns: [vfs_read] }
  - set_filter: { ops: kp, patterns: [vfs_write] }
  - register: a
  - register: kp
  - call: vfs_read
  - call: vfs_write
  - expect:
      callsite: { vfs_read: trampoline(a) }
      invocations: { a: 1, kp: "!=0" }
      rdx: match
      regs: match
      trampolines: { a: allocated }
      module_bytes: ">0"
  - register: g
  - call: vfs_read
  - expect: { graph: static(vfs_read), returns: match }
variant: { name: v, config: { era: "3.17" } }
`,
      't.yaml',
    ),
  );
  expect(r.checks.filter((c) => !c.passed)).toEqual([]);
  expect(r.checks.map((c) => c.name)).toEqual([
    'steps[6] expect: callsite vfs_read',
    'steps[6] expect: invocations a',
    'steps[6] expect: invocations kp',
    'steps[6] expect: rdx',
    'steps[6] expect: regs',
    'steps[6] expect: trampoline a',
    'steps[6] expect: module_bytes',
    'steps[9] expect: graph static(vfs_read)',
    'steps[9] expect: returns',
    '[v] steps[6] expect: invocations a',
    '[v] steps[6] expect: invocations kp',
    '[v] steps[6] expect: rdx',
    '[v] steps[6] expect: regs',
    '[v] steps[9] expect: graph static(vfs_read)',
    '[v] steps[9] expect: returns',
  ]);
});

test('a callback called for a function its ops does not trace: the rdx check names the event and why', async () => {
  // vfs_read's site is sent to b's trampoline: b's callback gets %rdx = b, for a function b filters out.
  const failed = await failedAfterRepoint(
    `name: t
config: { functions: 10, era: "3.18" }
eras: ["3.18"]
ops:
  - { name: a, callback: counter }
  - { name: b, callback: counter }
steps:
  - set_filter: { ops: a, patterns: [vfs_read] }
  - set_filter: { ops: b, patterns: [vfs_write] }
  - register: a
  - register: b
  - call: vfs_read
  - expect: { rdx: match }
`,
    3,
    'vfs_read',
    (k) => trampolineOf(k, 'vfs_write'),
  );
  expect(failed).toEqual([expect.stringMatching(/^steps\[5\] expect: rdx: 1 of 1 invocations got a wrong %rdx; first: event \d+ in vfs_read: b was called for vfs_read, which its filters exclude$/)]);
});

test("a trampoline reused from a freed dynamic ops is the other's old address, and the other has none", async () => {
  const r = await runScenario(
    loadScenarioText(
      `name: t
config: { functions: 10, era: modern }
eras: [modern]
ops:
  - { name: a, callback: counter, dynamic: true }
  - { name: b, callback: counter }
steps:
  - register: a
  - unregister: a
  - register: b
  - expect: { trampolines: { b: "reuses(a)", a: none } }
`,
      't.yaml',
    ),
  );
  expect(r.checks.map((c) => [c.name, c.passed, c.detail])).toEqual([
    ['steps[3] expect: trampoline b', true, 'at 0xffffffffa0000000; a\'s freed trampoline was at 0xffffffffa0000000'],
    ['steps[3] expect: trampoline a', true, 'none'],
  ]);
});

/** The trampoline the site of `fn` calls now. */
function trampolineOf(kernel: Kernel, fn: string): bigint {
  const ip = kernel.sym(fn);
  return decodeBranch(ip, kernel.memory.read(ip, 5))!.target;
}
