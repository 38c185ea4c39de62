// SPDX-License-Identifier: GPL-2.0-or-later
/* A worker thread of the pool (pool.ts): runs one job at a time and posts its result. */
import { parentPort } from 'node:worker_threads';
import { JOBS, type JobKind } from './jobs.js';
import type { JobRequest, JobReply } from './pool.js';

const port = parentPort;
if (!port) throw new Error('worker.ts runs as a worker thread');
port.on('message', (m: JobRequest) => {
  const run = JOBS[m.kind as JobKind] as (input: unknown) => Promise<unknown>;
  run(m.input).then(
    (output) => port.postMessage({ id: m.id, ok: true, output } satisfies JobReply),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      port.postMessage({ id: m.id, ok: false, error: { name: err.name, message: err.message, stack: err.stack ?? '' } } satisfies JobReply);
    },
  );
});
