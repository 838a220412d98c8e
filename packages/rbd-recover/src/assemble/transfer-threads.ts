import { availableParallelism } from 'node:os';
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { moduleWorkerUrl, startModuleWorker, throwIfAborted } from '@x/blockio';
import { RbdRecoverError } from '../errors.js';
import type { SshAddress } from '../hosts-file.js';
import type { SshOptions } from '../transport/ssh-options.js';
import type { FromWorker, ThreadBatch, ToWorker, TransferWorkerSetup } from './transfer-worker.js';

export type { ThreadBatch } from './transfer-worker.js';

/**
 * Heap limits of a transfer thread. ssh2 allocates a buffer per 32 KiB packet; each dies
 * at once, but its memory returns only when the collector runs, which V8 does when the
 * young generation fills. With the default (16 MiB semi-spaces) a thread held up to
 * ~30 MiB of dead packets; with 3 MiB the bench's 3 threads peaked ~55 MiB lower (168-176
 * MiB for the process instead of 226-236) at the same CPU.
 */
export const TRANSFER_THREAD_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 3 };

/**
 * Threads by default: one per tar stream up to 3 (the bench's 3 OSDs), also on 2 cores,
 * where a third thread let one stream go on while another waited on a write or for the
 * CPU (4 GiB over 3 OSDs: 1.35x `ssh cat` with 3 threads, 1.46-1.69x with 2); none on
 * one core (the main thread decrypts while the kernel writes).
 */
export function defaultTransferThreads(cores: number = availableParallelism()): number {
  return cores > 1 ? 3 : 0;
}

/** What the main thread does as a batch goes (the same steps as on its own streams). */
export interface ThreadBatchHandlers {
  /** Before the entry's first byte is written; the thread waits for it. */
  onStart(entry: number): Promise<void> | void;
  onProgress(bytes: number): void;
  onDone(entry: number, bytes: number, checksum: string): Promise<void> | void;
}

interface PendingBatch {
  readonly handlers: ThreadBatchHandlers;
  /** Messages of the batch are handled one after another (start, done, end in order). */
  tail: Promise<void>;
  resolve(missing: string[]): void;
  reject(error: unknown): void;
}

interface Thread {
  readonly worker: Worker;
  readonly batches: Map<number, PendingBatch>;
  /** Hosts it has connected to (or is connecting to): a batch for one of them goes there first. */
  readonly hosts: Set<string>;
  /** Bytes of the batches it holds: a new batch goes to the least loaded thread. */
  load: number;
  /** Bytes it reported written through O_DIRECT (at its last batch's end). */
  directBytes: number;
  failure: Error | undefined;
  readonly exited: Promise<void>;
}

export interface TransferThreadsOptions {
  readonly ssh: SshOptions;
  /** Threads at most (each with its own SSH connections). */
  readonly threads: number;
  readonly stallTimeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Tests: the first thread exits (as if it crashed) after writing this many bytes. */
  readonly exitAfterBytes?: number | undefined;
}

/**
 * Transfer threads (see transfer-worker.ts): started by `prestart` or on first use, at
 * most `threads`, a batch going to an idle thread (one connected to its host first), else
 * to the least loaded one. A thread that fails or exits fails its
 * batches (the transfer then retries their objects as after a dropped host) and is
 * replaced by the next batch. On abort every thread is terminated before the batches
 * reject, so that no thread writes once the caller moves on.
 */
export class TransferThreads {
  readonly #url: URL;
  readonly #tag: string;
  readonly #options: TransferThreadsOptions;
  readonly #threads: Thread[] = [];
  #nextId = 0;
  #directBytes = 0;
  #started = 0;
  #closed = false;
  #terminating: Promise<void> | undefined;
  readonly #onAbort = () => {
    this.#terminating = this.#terminateAll();
  };

  private constructor(url: URL, tag: string, options: TransferThreadsOptions) {
    this.#url = url;
    this.#tag = tag;
    this.#options = options;
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Threads for `options`, or undefined when they cannot run here: `threads` < 1, or
   * no worker file (the TypeScript sources, unbuilt): the caller streams on its own thread.
   */
  static async create(options: TransferThreadsOptions): Promise<TransferThreads | undefined> {
    if (options.threads < 1) return undefined;
    const { TRANSFER_WORKER_MODULE, TRANSFER_WORKER_TAG } = await import('./transfer-worker.js');
    const url = moduleWorkerUrl(TRANSFER_WORKER_MODULE);
    return url === undefined ? undefined : new TransferThreads(url, TRANSFER_WORKER_TAG, options);
  }

  /** Bytes the threads wrote through O_DIRECT descriptors (diagnostics and tests). */
  get directBytes(): number {
    return this.#directBytes;
  }

  /** The heap limits of the running threads (diagnostics and tests). */
  get resourceLimits(): ResourceLimits[] {
    return this.#threads.map((thread) => thread.worker.resourceLimits ?? {});
  }

  /**
   * Starts threads now, one per entry of `hosts` (the OSDs to be read, in order) up to
   * `threads`, each connecting to its entry's host: loading a thread and the SSH
   * handshake then overlap the caller's planning. A connection that fails is tried
   * again by the batch (which reports the error).
   */
  prestart(hosts: ReadonlyArray<{ readonly host: string; readonly address: SshAddress }>): void {
    if (this.#closed || this.#options.signal?.aborted) return;
    for (const { host, address } of hosts.slice(this.#threads.length, this.#options.threads)) {
      const thread = this.#start();
      thread.hosts.add(host);
      const message: ToWorker = { type: 'connect', host, address };
      thread.worker.postMessage(message);
    }
  }

  /** Streams one batch on a thread; resolves to the paths that could not be read. */
  run(batch: ThreadBatch, bytes: number, handlers: ThreadBatchHandlers): Promise<string[]> {
    throwIfAborted(this.#options.signal);
    if (this.#closed) throw new RbdRecoverError('UNSUPPORTED', 'the transfer threads are closed');
    const thread = this.#pick(batch.host);
    thread.hosts.add(batch.host);
    const id = this.#nextId++;
    thread.load += bytes;
    return new Promise<string[]>((resolve, reject) => {
      const done = () => {
        thread.load -= bytes;
        thread.batches.delete(id);
      };
      thread.batches.set(id, {
        handlers,
        tail: Promise.resolve(),
        resolve: (missing) => {
          done();
          resolve(missing);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      const message: ToWorker = { type: 'batch', id, ...batch };
      thread.worker.postMessage(message);
    });
  }

  /** Ends every thread: each closes its connections first (a second at most). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    await this.#terminating;
    await Promise.all(
      this.#threads.splice(0).map(async (thread) => {
        const closed = new Promise<void>((resolve) => {
          thread.worker.on('message', (message: FromWorker) => {
            if (message.type === 'closed') resolve();
          });
          const timer = setTimeout(resolve, 1000);
          timer.unref();
        });
        if (thread.failure === undefined) {
          thread.worker.postMessage({ type: 'close' } satisfies ToWorker);
          await Promise.race([closed, thread.exited]);
        }
        await thread.worker.terminate();
      }),
    );
  }

  #pick(host: string): Thread {
    for (let i = this.#threads.length - 1; i >= 0; i--) {
      if ((this.#threads[i] as Thread).failure !== undefined) this.#threads.splice(i, 1);
    }
    const idle = this.#threads.filter((thread) => thread.batches.size === 0);
    const connected = idle.find((thread) => thread.hosts.has(host));
    if (connected) return connected;
    if (idle[0]) return idle[0];
    if (this.#threads.length < this.#options.threads) return this.#start();
    return this.#threads.reduce((a, b) => (b.load < a.load ? b : a));
  }

  #start(): Thread {
    const setup: TransferWorkerSetup = {
      ssh: this.#options.ssh,
      stallTimeoutMs: this.#options.stallTimeoutMs,
      exitAfterBytes: this.#started === 0 ? this.#options.exitAfterBytes : undefined,
    };
    this.#started++;
    const worker = startModuleWorker(this.#url, this.#tag, setup, {
      resourceLimits: TRANSFER_THREAD_LIMITS,
    });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const thread: Thread = {
      worker,
      batches: new Map(),
      hosts: new Set(),
      load: 0,
      directBytes: 0,
      failure: undefined,
      exited,
    };
    worker.on('message', (message: FromWorker) => this.#receive(thread, message));
    worker.on('error', (error) => this.#fail(thread, error));
    worker.on('exit', (code) => {
      this.#fail(thread, new Error(`the transfer thread exited (code ${code})`));
    });
    this.#threads.push(thread);
    return thread;
  }

  #receive(thread: Thread, message: FromWorker): void {
    if (message.type === 'closed') return;
    if (message.type === 'progress') {
      // Progress of any batch of the thread: the tracker only counts bytes.
      const first = thread.batches.values().next().value as PendingBatch | undefined;
      first?.handlers.onProgress(message.bytes);
      return;
    }
    if (message.type === 'end' && message.directBytes !== undefined) {
      this.#directBytes += message.directBytes - thread.directBytes;
      thread.directBytes = message.directBytes;
    }
    const batch = thread.batches.get(message.id);
    if (batch === undefined) return;
    batch.tail = batch.tail.then(async () => {
      if (message.type === 'start') {
        await batch.handlers.onStart(message.entry);
        const reply: ToWorker = { type: 'started', id: message.id, entry: message.entry };
        thread.worker.postMessage(reply);
      } else if (message.type === 'done') {
        await batch.handlers.onDone(message.entry, message.bytes, message.checksum);
      } else if (message.error !== undefined) {
        batch.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      } else {
        batch.resolve(message.missing ?? []);
      }
    });
    batch.tail.catch((error) => batch.reject(error));
  }

  /** The thread is gone: its batches fail (their finished objects were reported already). */
  #fail(thread: Thread, error: Error): void {
    if (thread.failure !== undefined) return;
    thread.failure = error;
    for (const batch of thread.batches.values()) {
      // After the messages already received, so that finished objects count as finished.
      void batch.tail.then(
        () =>
          batch.reject(
            new RbdRecoverError('REMOTE_FAILED', `transfer thread failed: ${error.message}`, {
              cause: error,
            }),
          ),
        () => {}, // rejected already
      );
    }
  }

  /** On abort: the threads stop first (none writes afterwards), then their batches reject. */
  async #terminateAll(): Promise<void> {
    let aborted = new Error('aborted');
    try {
      throwIfAborted(this.#options.signal);
    } catch (error) {
      aborted = error as Error;
    }
    const threads = this.#threads.splice(0);
    for (const thread of threads) thread.failure ??= aborted;
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
    for (const thread of threads) {
      for (const batch of [...thread.batches.values()]) batch.reject(aborted);
    }
  }
}
