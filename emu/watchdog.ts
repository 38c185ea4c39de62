// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The wall-clock limit of a run, kept by one worker thread per process.
 *
 * Unicorn 2.0.1's own `timeout` starts a thread per run that polls every few
 * microseconds: on a two-core machine it can halve the guest's speed. This
 * watchdog sleeps in Atomics.wait until the run ends (the main thread
 * notifies it) or the deadline passes, and only then calls uc_emu_stop() on
 * the running engine, from its own thread, as Unicorn's timer would.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { koffi, libraryPath, type Pointer } from './unicorn.js';

const require = createRequire(import.meta.url);

/*
 * Shared words: [0] the armed run's generation (0 idle, -2 while the watchdog
 * is stopping the run), [1] the generation the watchdog stopped. The main
 * thread can only leave disarm() once no stop is in flight, so a stop never
 * reaches the next run.
 */
const STATE = 0;
const FIRED = 1;
const STOPPING = -2;

const WORKER = `
const { workerData } = require('node:worker_threads');
const koffi = require(workerData.koffi);
const lib = koffi.load(workerData.lib);
const stop = lib.func('int uc_emu_stop(uint64_t uc)');
const words = new Int32Array(workerData.words);
const args = new BigInt64Array(workerData.args);
for (;;) {
  Atomics.wait(words, ${STATE}, 0);
  const gen = Atomics.load(words, ${STATE});
  if (gen <= 0) continue;
  const left = Number(args[1]) - Date.now();
  if (Atomics.wait(words, ${STATE}, gen, Math.max(0, left)) === 'timed-out' &&
      Atomics.compareExchange(words, ${STATE}, gen, ${STOPPING}) === gen) {
    stop(BigInt.asUintN(64, args[0]));
    Atomics.store(words, ${FIRED}, gen);
    Atomics.store(words, ${STATE}, gen);
    Atomics.notify(words, ${STATE});
  }
  while (Atomics.load(words, ${STATE}) === gen) Atomics.wait(words, ${STATE}, gen);
}
`;

let worker: Worker | undefined;
let words: Int32Array;
let args: BigInt64Array;
let generation = 0;

function start(): void {
  const w = new SharedArrayBuffer(8);
  const a = new SharedArrayBuffer(16);
  words = new Int32Array(w);
  args = new BigInt64Array(a);
  worker = new Worker(WORKER, {
    eval: true,
    workerData: { koffi: require.resolve('koffi'), lib: libraryPath, words: w, args: a },
  });
  worker.unref(); // never keeps the process alive
}

/** Arms the watchdog for a run of engine `handle`; returns the run's generation. */
export function arm(handle: Pointer, timeoutMs: number): number {
  if (!worker) start();
  generation = generation >= 0x3fffffff ? 1 : generation + 1;
  args[0] = BigInt.asIntN(64, koffi.address(handle));
  args[1] = BigInt(Date.now() + Math.ceil(timeoutMs));
  Atomics.store(words, FIRED, 0);
  Atomics.store(words, STATE, generation);
  Atomics.notify(words, STATE);
  return generation;
}

/** Disarms after the run; true when the watchdog stopped it. */
export function disarm(gen: number): boolean {
  for (;;) {
    const prev = Atomics.compareExchange(words, STATE, gen, 0);
    if (prev !== STOPPING) break;
    Atomics.wait(words, STATE, STOPPING); // the watchdog is inside uc_emu_stop: let it finish
  }
  Atomics.notify(words, STATE);
  return Atomics.load(words, FIRED) === gen;
}
