// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The wall-clock limit of runs, kept by one worker thread per process.
 *
 * Unicorn 2.0.1's own `timeout` starts a thread per run that polls every few
 * microseconds: on a two-core machine it can halve the guest's speed. Waking
 * a watchdog thread at every run costs a context switch per run, more than a
 * short Kernel.call itself. So a run only writes its engine and deadline
 * into shared memory (no system call), and the watchdog, once woken by the
 * first timed run of a command, looks every TICK_MS; when it sees a run past
 * its deadline it calls uc_emu_stop() on that engine, from its own thread,
 * as Unicorn's timer would. After IDLE_MS without a timed run it goes back to
 * sleep until the next one. Runs bounded by an instruction count (quanta,
 * budgets) need no watchdog at all (Engine.run).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { libraryPath } from './unicorn.js';

const require = createRequire(import.meta.url);

/*
 * Shared words: [STATE] the running run's generation (0 none, -2 while the
 * watchdog is stopping it), [FIRED] the generation the watchdog stopped,
 * [AWAKE] 1 while the watchdog is looking. The main thread leaves a run only
 * once no stop is in flight, so a stop never reaches the next run.
 */
const STATE = 0;
const FIRED = 1;
const AWAKE = 2;
const TICK = 3; // never written: the watchdog's timed sleeps wait on it
const STOPPING = -2;
/** How late a timeout may fire: the watchdog's period. */
export const TICK_MS = 10;
const IDLE_MS = 1000;

const WORKER = `
const { workerData } = require('node:worker_threads');
const koffi = require(workerData.koffi);
const lib = koffi.load(workerData.lib);
const stop = lib.func('int uc_emu_stop(uint64_t uc)');
const words = new Int32Array(workerData.words);
const args = new BigInt64Array(workerData.args);
let idle = 0;
for (;;) {
  if (Atomics.load(words, ${AWAKE}) === 0) {
    Atomics.wait(words, ${AWAKE}, 0);
    idle = 0;
    continue;
  }
  Atomics.wait(words, ${TICK}, 0, ${TICK_MS});
  const gen = Atomics.load(words, ${STATE});
  if (gen > 0) {
    idle = 0;
    if (Date.now() >= Number(args[1]) && Atomics.compareExchange(words, ${STATE}, gen, ${STOPPING}) === gen) {
      stop(BigInt.asUintN(64, args[0]));
      Atomics.store(words, ${FIRED}, gen);
      Atomics.store(words, ${STATE}, gen);
      Atomics.notify(words, ${STATE});
    }
  } else if ((idle += ${TICK_MS}) >= ${IDLE_MS}) {
    // Sleep; but a run that started meanwhile (it saw AWAKE = 1) keeps it awake.
    Atomics.store(words, ${AWAKE}, 0);
    if (Atomics.load(words, ${STATE}) > 0) Atomics.store(words, ${AWAKE}, 1);
    idle = 0;
  }
}
`;

let worker: Worker | undefined;
let words: Int32Array;
let args: BigInt64Array;
let generation = 0;

function start(): void {
  const w = new SharedArrayBuffer(16);
  const a = new SharedArrayBuffer(16);
  words = new Int32Array(w);
  args = new BigInt64Array(a);
  worker = new Worker(WORKER, {
    eval: true,
    workerData: { koffi: require.resolve('koffi'), lib: libraryPath, words: w, args: a },
  });
  worker.unref(); // never keeps the process alive
}

let timedRuns = 0;
/** Runs entered with a wall-clock limit so far (for tests). */
export function timedRunCount(): number {
  return timedRuns;
}

/** Enters a run of the engine at `address` (its uc_engine pointer) limited to `timeoutMs`; returns the run's generation. */
export function arm(address: bigint, timeoutMs: number): number {
  if (!worker) start();
  timedRuns++;
  generation = generation >= 0x3fffffff ? 1 : generation + 1;
  args[0] = address;
  args[1] = BigInt(Date.now() + Math.ceil(timeoutMs));
  Atomics.store(words, FIRED, 0);
  Atomics.store(words, STATE, generation);
  // Only the first timed run after a quiet spell wakes the watchdog.
  if (Atomics.load(words, AWAKE) === 0) {
    Atomics.store(words, AWAKE, 1);
    Atomics.notify(words, AWAKE);
  }
  return generation;
}

/** Leaves the run; true when the watchdog stopped it. */
export function disarm(gen: number): boolean {
  for (;;) {
    const prev = Atomics.compareExchange(words, STATE, gen, 0);
    if (prev !== STOPPING) break;
    Atomics.wait(words, STATE, STOPPING); // the watchdog is inside uc_emu_stop: let it finish
  }
  return Atomics.load(words, FIRED) === gen;
}
