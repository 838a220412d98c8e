import type { Worker } from 'node:worker_threads';
import { BlockIoError, type FileDevice, fromSystemError, throwIfAborted } from '@x/blockio';
import { copyWindows, type WindowFaults, type WindowsCopied } from './copy-windows.js';

/**
 * The worker: copyWindows from its source text (one definition; the same from the
 * TypeScript sources in tests and from dist/ or the bundle), one batch per message,
 * into one page-aligned buffer of its own (a resizable ArrayBuffer's memory starts on
 * a page: see @x/blockio allocateAligned; the kernel copies into it much faster).
 */
function workerSource(): string {
  return `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const copyWindows = ${copyWindows.toString()};
const { source, target, windowSize, blockSize, abort, faults } = workerData;
const buffer = new Uint8Array(new ArrayBuffer(windowSize, { maxByteLength: windowSize }));
parentPort.postMessage({ ready: true });
parentPort.on('message', ({ id, batch }) => {
  const done = copyWindows(fs, source, target, buffer, blockSize, new Float64Array(batch), abort, faults);
  parentPort.postMessage({ id, ...done });
});
`;
}

let liveThreads = 0;
let startedThreads = 0;

/** Copy threads running in this process now, and started so far (for tests). */
export function copyThreadCounts(): { live: number; started: number } {
  return { live: liveThreads, started: startedThreads };
}

/** Batches a thread holds at once: the next is there when it finishes one. */
const BATCHES_PER_THREAD = 2;

export interface CopyThreadsOptions {
  /** Read from (the image's data file). */
  source: FileDevice;
  /** Written to (a new raw file). */
  target: FileDevice;
  /** Threads to start (at least 1). */
  threads: number;
  /** The largest window of a batch: each thread's buffer. */
  windowSize: number;
  /** All-zero blocks of this size (from each run's start) are not written. */
  blockSize: number;
  /** Aborting stops the threads before their next window; `run` and `finish` then throw ABORTED. */
  signal?: AbortSignal | undefined;
  /** The name an ABORTED error gives (the image's). */
  name: string;
  faults?: WindowFaults | undefined;
}

interface Thread {
  readonly worker: Worker;
  readonly exited: Promise<void>;
  /** Batches sent and not answered. */
  busy: number;
  /** Started up (a thread takes tens of milliseconds, more on a busy machine). */
  ready: boolean;
}

/**
 * Worker threads that move the data of a raw convert (copyWindows): the main thread
 * walks the L2 tables and hands out batches of windows; each thread copies with
 * synchronous reads and writes into its own small buffer, so no request costs a
 * promise, a thread-pool hand-off or an event-loop turn, and the buffer is still in
 * the CPU's cache when it is written. Two threads keep both cores busy the way
 * qemu-img's coroutines on its thread pool do. Writes of different threads never
 * overlap (windows do not).
 *
 * The threads write through the descriptors of `source` and `target`: `finish` and
 * `abandon` end every thread (terminate resolves once the thread has stopped) before
 * they return, so the caller may close or remove the files afterwards.
 */
export class CopyThreads {
  bytesRead = 0;
  bytesWritten = 0;
  readonly #options: CopyThreadsOptions;
  readonly #threads: Thread[] = [];
  /** Set to 1 to stop every thread before its next window. */
  readonly #abort = new Int32Array(new SharedArrayBuffer(4));
  readonly #pending = new Map<number, (done: WindowsCopied | undefined) => void>();
  #nextId = 0;
  #waiters: Array<() => void> = [];
  #failure: { error: unknown } | undefined;
  #ended = false;
  readonly #onAbort = () => {
    Atomics.store(this.#abort, 0, 1);
    this.#wakeAll();
  };

  /** Starts every thread (they start up while the caller goes on). */
  constructor(options: CopyThreadsOptions) {
    this.#options = options;
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
    for (let index = 0; index < options.threads; index++) this.#start();
  }

  /**
   * Hands `batch` (copyWindows layout) to the least busy thread that has started up,
   * waiting while every such thread holds BATCHES_PER_THREAD. Does not wait for the
   * copy: `finish` does. With `unlessStarting`, returns false at once (the batch is the
   * caller's to copy) while no thread has started up yet. Throws the first failure.
   */
  async run(batch: Float64Array, options: { unlessStarting?: boolean } = {}): Promise<boolean> {
    for (;;) {
      this.#throwIfFailed();
      throwIfAborted(this.#options.signal, this.#options.name);
      if (options.unlessStarting && !this.#threads.some((thread) => thread.ready)) return false;
      const thread = this.#pick();
      if (thread) {
        this.#send(thread, batch);
        return true;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Waits for every batch, ends the threads, and throws the first failure. */
  async finish(): Promise<void> {
    while (
      this.#pending.size > 0 &&
      this.#failure === undefined &&
      !this.#options.signal?.aborted
    ) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    await this.#end();
    this.#throwIfFailed();
    throwIfAborted(this.#options.signal, this.#options.name);
  }

  /** After a failure elsewhere: stops the threads (none writes afterwards); throws nothing. */
  async abandon(): Promise<void> {
    Atomics.store(this.#abort, 0, 1);
    await this.#end();
  }

  #pick(): Thread | undefined {
    let best: Thread | undefined;
    for (const thread of this.#threads) {
      if (
        thread.ready &&
        thread.busy < BATCHES_PER_THREAD &&
        (best === undefined || thread.busy < best.busy)
      ) {
        best = thread;
      }
    }
    return best;
  }

  #send(thread: Thread, batch: Float64Array): void {
    const id = this.#nextId++;
    thread.busy++;
    this.#pending.set(id, (done) => {
      thread.busy--;
      if (done) this.#account(done);
      this.#wakeAll();
    });
    thread.worker.postMessage({ id, batch: batch.buffer }, [batch.buffer as ArrayBuffer]);
  }

  #account(done: WindowsCopied): void {
    this.bytesRead += done.bytesRead;
    this.bytesWritten += done.bytesWritten;
    const failure = done.failure;
    if (failure === undefined) return;
    const { source, target } = this.#options;
    const error = Object.assign(new Error(failure.message), { code: failure.code });
    this.#fail(
      failure.kind === 'short'
        ? new BlockIoError(
            'SHORT_READ',
            `file ended after ${failure.offset} bytes while reading ${failure.length} bytes at ${failure.offset}; did it shrink while being read?`,
            { path: source.name, offset: failure.offset },
          )
        : failure.kind === 'read'
          ? fromSystemError(error, `read ${failure.length} bytes`, {
              path: source.name,
              offset: failure.offset,
            })
          : fromSystemError(error, `write ${failure.length} bytes`, {
              path: target.name,
              offset: failure.offset,
            }),
    );
  }

  #start(): void {
    const { source, target, windowSize, blockSize, faults } = this.#options;
    // Loaded here, not imported: most commands never start a thread.
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    const worker = new Worker(workerSource(), {
      eval: true,
      workerData: {
        source: source.handle.fd,
        target: target.handle.fd,
        windowSize,
        blockSize,
        abort: this.#abort,
        faults,
      },
    });
    liveThreads++;
    startedThreads++;
    const exited = new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        liveThreads--;
        // A thread that ends while it holds batches takes them with it: they fail.
        if (!this.#ended) {
          this.#fail(
            new BlockIoError('EIO', `a copy thread exited (code ${code})`, { path: target.name }),
          );
        }
        resolve();
      }),
    );
    const thread: Thread = { worker, exited, busy: 0, ready: false };
    worker.on('message', (reply: (WindowsCopied & { id: number }) | { ready: true }) => {
      if ('ready' in reply) {
        thread.ready = true;
        this.#wakeAll();
        return;
      }
      const settle = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      settle?.(reply);
    });
    worker.on('error', (error) =>
      this.#fail(
        new BlockIoError('EIO', `a copy thread failed: ${error.message}`, {
          path: target.name,
          cause: error,
        }),
      ),
    );
    this.#threads.push(thread);
  }

  /** The first failure wins; the other threads stop before their next window. */
  #fail(error: unknown): void {
    this.#failure ??= { error };
    Atomics.store(this.#abort, 0, 1);
    this.#wakeAll();
  }

  async #end(): Promise<void> {
    this.#ended = true;
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    await Promise.all(
      this.#threads.splice(0).map(async ({ worker, exited }) => {
        await worker.terminate();
        await exited;
      }),
    );
    // Batches whose thread was ended unanswered.
    for (const settle of this.#pending.values()) settle(undefined);
    this.#pending.clear();
  }

  /** Wakes every `run` and `finish` waiting for a thread, a batch or a failure. */
  #wakeAll(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}
