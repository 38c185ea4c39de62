// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Runs jobs (jobs.ts) in worker threads, several at once, and hands their
 * results back in the order of the inputs, so that what a command prints does
 * not depend on how many workers ran or which finished first.
 *
 * Workers run the same sources as the main thread: the TypeScript files
 * through tsx when the CLI runs from source, the compiled .js files when it
 * runs from a build.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { JobKind, JobKinds } from './jobs.js';

export interface JobRequest {
  id: number;
  kind: JobKind;
  input: unknown;
}

export type JobReply = { id: number; ok: true; output: unknown } | { id: number; ok: false; error: { name: string; message: string; stack: string } };

/** An error a job threw in a worker, with the name and message it had there. */
export class JobError extends Error {
  constructor(
    readonly originalName: string,
    message: string,
    readonly workerStack: string,
  ) {
    super(message);
    this.name = 'JobError';
    // Where it went wrong is in the worker: show that stack (FTRACE_SIM_DEBUG=1 prints it).
    this.stack = `JobError (${originalName} in a worker thread): ${message}\n${workerStack.split('\n').slice(1).join('\n')}`;
  }
}

export function defaultJobs(): number {
  return availableParallelism();
}

function startWorker(): Worker {
  const self = import.meta.url;
  const fromSource = self.endsWith('.ts');
  const entry = new URL(fromSource ? './worker.ts' : './worker.js', self);
  if (!fromSource) return new Worker(entry);
  // From source, the worker registers tsx's loader first, as bin/ftrace-sim.js
  // does (a worker inherits neither the main thread's loader nor --import).
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`));
}

/**
 * Runs `kind` on every input with up to `jobs` workers (in this thread when
 * jobs is 1). `onResult` sees each result in input order as soon as every
 * earlier one is in. The first failure rejects, after the workers are stopped.
 */
export async function runJobs<K extends JobKind>(
  kind: K,
  inputs: readonly JobKinds[K]['input'][],
  jobs: number,
  onResult: (output: JobKinds[K]['output'], index: number) => void = () => {},
): Promise<JobKinds[K]['output'][]> {
  const outputs: JobKinds[K]['output'][] = new Array(inputs.length);
  const done: boolean[] = new Array(inputs.length).fill(false);
  let shown = 0;
  const settle = (i: number, out: JobKinds[K]['output']) => {
    outputs[i] = out;
    done[i] = true;
    while (shown < inputs.length && done[shown]) onResult(outputs[shown]!, shown++);
  };
  if (jobs <= 1 || inputs.length <= 1) {
    // The jobs' modules (Unicorn, Keystone, the scenario engine) load when a job runs here.
    const { JOBS } = await import('./jobs.js');
    const run = JOBS[kind] as (input: JobKinds[K]['input']) => Promise<JobKinds[K]['output']>;
    for (let i = 0; i < inputs.length; i++) settle(i, await run(inputs[i]!));
    return outputs;
  }
  const workers = Array.from({ length: Math.min(jobs, inputs.length) }, startWorker);
  let next = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let remaining = inputs.length;
      const feed = (w: Worker) => {
        if (next < inputs.length) {
          const id = next++;
          w.postMessage({ id, kind, input: inputs[id] } satisfies JobRequest);
        }
      };
      for (const w of workers) {
        w.on('message', (m: JobReply) => {
          if (!m.ok) return reject(new JobError(m.error.name, m.error.message, m.error.stack));
          settle(m.id, m.output as JobKinds[K]['output']);
          if (--remaining === 0) resolve();
          else feed(w);
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (remaining > 0) reject(new Error(`a worker thread exited (code ${code}) with ${remaining} job(s) left`));
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return outputs;
}
