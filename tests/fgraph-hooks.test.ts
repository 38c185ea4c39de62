// SPDX-License-Identifier: GPL-2.0-or-later
/* The graph tracer's hooks in guest memory: set on register, put back on failure and on unregister. */
import type { Booted } from '../kernel-model/boot.js';
import { withKernel } from './helpers.js';

function hooks({ kernel }: Booted): Record<string, string | undefined> {
  const at = (n: string) => kernel.symbols.format(kernel.memory.readU64(kernel.sym(n)), { short: true });
  return { entry: at('ftrace_graph_entry'), __entry: at('__ftrace_graph_entry'), ret: at('ftrace_graph_return') };
}

const STUBS = { entry: 'ftrace_graph_entry_stub', __entry: 'ftrace_graph_entry_stub', ret: 'ftrace_stub' };

describe('function_graph hooks', () => {
  test.each(['3.18', 'modern'] as const)('%s: a registration that fails puts every hook back, and the tracer can be used again', async (era) => {
    await withKernel({ functions: 4, era }, (b) => {
      const { ftrace } = b;
      const g = ftrace.createOps({ name: 'g', callback: 'function_graph' });
      expect(ftrace.register_ftrace_function(g)).toEqual({ ok: true });
      expect(ftrace.graph.register(g)).toMatchObject({ ok: false, errno: 'EBUSY' });
      expect(hooks(b)).toEqual(STUBS);
      expect(ftrace.unregister_ftrace_function(g)).toEqual({ ok: true });

      const h = ftrace.createOps({ name: 'h', callback: 'function_graph' });
      expect(ftrace.graph.register(h)).toEqual({ ok: true });
      expect(hooks(b)).toEqual({ entry: 'trace_graph_entry', __entry: 'trace_graph_entry', ret: 'trace_graph_return' });
      expect(b.kernel.memory.readU64(b.kernel.sym('fgraph_ops'))).toBe(h.addr);
      const i = ftrace.createOps({ name: 'i', callback: 'function_graph' });
      expect(ftrace.graph.register(i)).toEqual({ ok: false, errno: 'EBUSY', code: -16, message: 'the graph tracer is already in use by h' });
      expect(ftrace.graph.unregister(h)).toEqual({ ok: true });
      expect(hooks(b)).toEqual(STUBS);
    });
  });

  test('v3.18: with another ops registered the entry hook asks the hashes first (ftrace_graph_entry_test)', async () => {
    await withKernel({ functions: 4, era: '3.18' }, (b) => {
      const { ftrace } = b;
      const g = ftrace.createOps({ name: 'g', callback: 'function_graph' });
      const other = ftrace.createOps({ name: 'other', callback: 'counter' });
      expect(ftrace.graph.register(g)).toEqual({ ok: true });
      expect(hooks(b).entry).toBe('trace_graph_entry');
      expect(ftrace.register_ftrace_function(other)).toEqual({ ok: true });
      expect(hooks(b).entry).toBe('ftrace_graph_entry_test');
      expect(ftrace.unregister_ftrace_function(other)).toEqual({ ok: true });
      expect(hooks(b).entry).toBe('trace_graph_entry');
    });
  });

  test('set_graph_function: a pattern that matches nothing, and max_graph_depth, as the kernel answers them', async () => {
    await withKernel({ functions: 4 }, ({ ftrace }) => {
      expect(ftrace.graph.configure({ functions: ['vfs_read', 'nothing_*'] })).toEqual({
        ok: false, errno: 'EINVAL', code: -22, message: 'nothing_* matches no function in available_filter_functions',
      });
      expect(ftrace.graph.configure({ notrace: ['!nothing'] })).toMatchObject({ ok: false, errno: 'EINVAL' });
      expect(ftrace.graph.configure({ maxDepth: -1 })).toEqual({ ok: false, errno: 'EINVAL', code: -22, message: 'max_graph_depth must be a whole number, not -1' });
      expect(ftrace.graph.configure({ maxDepth: 1.5 })).toMatchObject({ ok: false, errno: 'EINVAL' });
      expect(ftrace.graph.configure({ maxDepth: 3 })).toEqual({ ok: true });
      expect(ftrace.graph.maxDepth).toBe(3);
      expect(ftrace.graph.configure({ maxDepth: 0 })).toEqual({ ok: true });
      expect(ftrace.graph.maxDepth).toBe(0);
    });
  });
});
