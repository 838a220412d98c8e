import type { Worker } from 'node:worker_threads';
import { Qcow2Error } from '../errors.js';
import { type CompressionType, type DecodeTools, decodeClusterInto } from './cluster-decoder.js';
import { type DecompressWhere, decompressFailure } from './decompress-failure.js';
import {
  type FileJob,
  type FileJobResult,
  type FileJobScratch,
  runFileJob,
} from './inflate-to-file.js';
import { nativeZstd, nodeZlib } from './node-zlib.js';
import {
  openHandleDecoder,
  openRawInflater,
  openZstdDecoder,
  type RawInflateInto,
} from './raw-inflater.js';
import { bindZstdModule, loadWasmZstd, wasmZstdModulePath } from './wasm-zstd.js';
import { parseZstdFrame } from './zstd-frame.js';

/**
 * The worker: decodeClusterInto and parseZstdFrame from their source text (one
 * definition; the same from the TypeScript sources in tests and from dist/), over
 * a batch of clusters per message. Buffers move both ways (transferred, not copied).
 * A message with `file` is a FileJob: the worker reads, decodes and writes itself
 * (runFileJob) and answers with counts only.
 */
function workerSource(wasmZstdModule: string | undefined): string {
  return `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const parseZstdFrame = ${parseZstdFrame.toString()};
const decodeClusterInto = ${decodeClusterInto.toString()};
const bindZstdModule = ${bindZstdModule.toString()};
const openHandleDecoder = ${openHandleDecoder.toString()};
const runFileJob = ${runFileJob.toString()};
const scratch = {};
const tools = {
  inflateRawSync: zlib.inflateRawSync,
  inflateRawInto: openHandleDecoder(() => zlib.createInflateRaw(), zlib.constants.Z_SYNC_FLUSH, 'inflates'),
  zstdDecodeInto: zlib.createZstdDecompress
    ? openHandleDecoder(() => zlib.createZstdDecompress(), 0, 'decompresses')
    : undefined,
  zstdDecompressSync: zlib.zstdDecompressSync,
  wasmZstd: undefined,
  parseZstdFrame,
  syncFlush: zlib.constants.Z_SYNC_FLUSH,
};
// The WebAssembly module compiles asynchronously; messages wait for it, in order.
const ready = ${
    wasmZstdModule
      ? `require(${JSON.stringify(wasmZstdModule)})().then((module) => { tools.wasmZstd = bindZstdModule(module); })`
      : 'Promise.resolve()'
  };
parentPort.on('message', async (message) => {
  // Asked to stop (stopWorker): end once what was sent before has run.
  if (message === 'close') {
    parentPort.close();
    return;
  }
  const { id, type, clusterSize, input, spans, out, file } = message;
  await ready;
  if (file) {
    const decode = (bytes, into, at) => decodeClusterInto(tools, type, bytes, clusterSize, into, at);
    parentPort.postMessage({ id, result: runFileJob(fs, decode, scratch, file) });
    return;
  }
  const inBytes = new Uint8Array(input);
  const outBytes = new Uint8Array(out);
  const details = [];
  for (let i = 0; i < spans.length; i += 2) {
    const detail = decodeClusterInto(tools, type, inBytes.subarray(spans[i], spans[i] + spans[i + 1]),
      clusterSize, outBytes, (i / 2) * clusterSize);
    details.push(detail === undefined ? null : detail);
  }
  parentPort.postMessage({ id, input, out, details }, [input, out]);
});
`;
}

/**
 * Worker threads an inflate pool starts by default: one per core up to 4 (the
 * thread that reads and writes needs little CPU next to inflate), none on one core.
 */
export function defaultInflateWorkers(): number {
  const cores = process.getBuiltinModule('node:os').availableParallelism();
  return cores > 1 ? Math.min(cores, 4) : 0;
}

let liveWorkers = 0;

/** Inflate worker threads currently running in this process (for leak tests). */
export function liveInflateWorkers(): number {
  return liveWorkers;
}

interface Job {
  settle(reply: WorkerReply): void;
  reject(error: unknown): void;
  wheres: DecompressWhere[];
}

interface PoolWorker {
  worker: Worker;
  busy: number;
  exited: Promise<void>;
}

/** How long a worker may take to stop when asked before it is terminated. */
const STOP_GRACE_MS = 5000;

/**
 * Ends a worker by asking it to close its port once it has run what it was sent.
 * Worker.terminate() can stop a worker in the middle of building its zlib stream,
 * and Node 20 then aborts the whole process when the half-made stream is collected
 * ("close before init" in node_zlib.cc; seen once in a CI run of the fuzz tests,
 * which close pools right after warming them). terminate() remains the fallback.
 */
async function stopWorker({ worker, exited }: PoolWorker): Promise<void> {
  worker.postMessage('close');
  const fallback = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
  await exited;
  clearTimeout(fallback);
}

type WorkerReply =
  | { id: number; input: ArrayBuffer; out: ArrayBuffer; details: Array<string | null> }
  | { id: number; result: FileJobResult };

/** Free ArrayBuffers kept for reuse (fresh memory costs page faults here). */
const SPARE_BUFFERS = 16;
/** Input buffers are allocated in multiples of this. */
const INPUT_SIZE_CLASS = 256 << 10;

/**
 * Inflates compressed clusters of one image (one compression type and cluster
 * size) off the calling thread, so a copy uses every core for inflate while its
 * own thread reads and writes: on a few worker threads, a batch of clusters per
 * message, decoded in a loop (zlib with one reused stream, openRawInflater). Each
 * `inflate` call resolves on its own, so callers that keep a bounded number of
 * batches in flight and consume them oldest first get their clusters in order
 * with bounded memory (OrderedInflater does that). With `size` 0 it inflates
 * on the calling thread. Workers do not keep the process alive; `close()` ends
 * them, and every pending batch then rejects.
 */
export class InflatePool {
  readonly size: number;
  readonly type: CompressionType;
  readonly clusterSize: number;
  #workers: PoolWorker[] | undefined;
  readonly #jobs = new Map<number, Job>();
  readonly #spares = new Map<number, ArrayBuffer[]>();
  #spareCount = 0;
  /** Memory this pool allocated: only that is reused, and moved whole to a worker. */
  readonly #ours = new WeakSet<ArrayBuffer>();
  #nextId = 0;
  #failure: unknown;
  #closed = false;
  #inlineTools: Promise<DecodeTools> | undefined;
  readonly #inlineScratch: FileJobScratch = {};

  constructor(type: CompressionType, clusterSize: number, size = defaultInflateWorkers()) {
    this.type = type;
    this.clusterSize = clusterSize;
    this.size = Math.max(0, Math.floor(size));
  }

  /**
   * A buffer of `length` bytes for `inflate` input, reused when one is free. Its
   * memory is rounded up to a size class, so inputs of similar sizes share buffers.
   */
  buffer(length: number): Buffer {
    const capacity = Math.ceil(Math.max(1, length) / INPUT_SIZE_CLASS) * INPUT_SIZE_CLASS;
    const whole = this.#take(capacity);
    return Buffer.from(whole, 0, length);
  }

  /** Gives a buffer from `inflate` (or `buffer`) back for reuse; the caller must not touch it again. */
  release(buffer: Uint8Array): void {
    const whole = buffer.buffer;
    if (!(whole instanceof ArrayBuffer) || !this.#ours.has(whole)) return;
    if (this.#spareCount >= SPARE_BUFFERS) return;
    const list = this.#spares.get(whole.byteLength) ?? [];
    list.push(whole);
    this.#spares.set(whole.byteLength, list);
    this.#spareCount++;
  }

  /**
   * Inflates the clusters whose compressed bytes are `input[spans[2i], +spans[2i+1])`
   * into one buffer holding cluster i at i × clusterSize. The pool takes `input`
   * (it is moved to a worker): do not use it afterwards. A cluster that does not
   * inflate to exactly one cluster rejects with DECOMPRESS_FAILED naming its file
   * and offset (`wheres[i]`).
   */
  inflate(input: Uint8Array, spans: number[], wheres: DecompressWhere[]): Promise<Buffer> {
    if (this.#closed) return Promise.reject(this.#closedError(wheres[0]?.path ?? ''));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const out = this.#take(this.clusterSize * wheres.length);
    if (this.size === 0) return this.#inflateInline(input, spans, wheres, out);
    // Buffers from buffer() are moved whole; anything else is copied first (moving
    // a view would move, or clone, everything around it).
    const owned =
      input.byteOffset === 0 && this.#ours.has(input.buffer as ArrayBuffer)
        ? (input.buffer as ArrayBuffer)
        : new Uint8Array(input).buffer;
    return new Promise<Buffer>((resolve, reject) => {
      this.#post(
        { type: this.type, clusterSize: this.clusterSize, input: owned, spans, out },
        [owned, out],
        {
          settle: (reply) => {
            if ('result' in reply) return;
            this.#ours.add(reply.input);
            this.#ours.add(reply.out);
            this.release(new Uint8Array(reply.input));
            const index = reply.details.findIndex((detail) => detail !== null);
            if (index >= 0) {
              this.release(new Uint8Array(reply.out));
              reject(
                decompressFailure(
                  wheres[index] as DecompressWhere,
                  this.type,
                  reply.details[index] as string,
                ),
              );
            } else {
              resolve(Buffer.from(reply.out));
            }
          },
          reject,
          wheres,
        },
      );
    });
  }

  /**
   * Runs a FileJob (see runFileJob) on a worker, or on this thread when the pool
   * has none: the clusters' compressed bytes are read, inflated and written to
   * the output there. The result says what failed, if anything (the caller names
   * it); it rejects only when the pool fails (closed, a worker died), naming `path`.
   */
  runFileJob(job: Omit<FileJob, 'clusterSize'>, path: string): Promise<FileJobResult> {
    const where = [{ path, offset: 0, guestOffset: 0 }];
    if (this.#closed) return Promise.reject(this.#closedError(path));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const file: FileJob = { ...job, clusterSize: this.clusterSize };
    if (this.size === 0) return this.#runFileJobInline(file);
    return new Promise<FileJobResult>((resolve, reject) => {
      this.#post(
        { type: this.type, clusterSize: this.clusterSize, file },
        [file.items.buffer as ArrayBuffer],
        {
          settle: (reply) => {
            if ('result' in reply) resolve(reply.result);
          },
          reject,
          wheres: where,
        },
      );
    });
  }

  /** Sends `message` to the least busy worker; `job` settles with its reply. */
  #post(message: object, transfer: ArrayBuffer[], job: Job): void {
    const workers = this.#start();
    const target = workers.reduce((best, candidate) =>
      candidate.busy < best.busy ? candidate : best,
    );
    const id = this.#nextId++;
    // A worker with work keeps the process alive (the caller awaits its reply);
    // an idle one does not, so an image that is never closed cannot hang a process.
    if (target.busy++ === 0) target.worker.ref();
    const done = () => {
      if (--target.busy === 0) target.worker.unref();
    };
    this.#jobs.set(id, {
      settle: (reply) => {
        done();
        job.settle(reply);
      },
      reject: (error) => {
        done();
        job.reject(error);
      },
      wheres: job.wheres,
    });
    target.worker.postMessage({ ...message, id }, transfer);
  }

  /**
   * Starts the workers now rather than at the first batch (a worker takes tens of
   * milliseconds to boot): for a caller that knows compressed clusters are coming.
   */
  warm(): void {
    if (this.size > 0 && !this.#closed) this.#start();
  }

  /** Inflates one cluster; the result is the caller's to keep. */
  async inflateOne(input: Uint8Array, where: DecompressWhere): Promise<Buffer> {
    return this.inflate(input, [0, input.byteLength], [where]);
  }

  /** Ends the workers; batches still in flight reject (once no worker runs). Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers ?? [];
    this.#workers = undefined;
    this.#spares.clear();
    this.#spareCount = 0;
    const closed = this.#closedError([...this.#jobs.values()][0]?.wheres[0]?.path ?? '');
    await Promise.all(workers.map(stopWorker));
    this.#fail(closed);
  }

  #take(length: number): ArrayBuffer {
    const spare = this.#spares.get(length)?.pop();
    if (spare) {
      this.#spareCount--;
      return spare;
    }
    const fresh = new ArrayBuffer(length);
    this.#ours.add(fresh);
    return fresh;
  }

  #start(): PoolWorker[] {
    if (this.#workers) return this.#workers;
    const source = workerSource(
      this.type === 'zstd' && !nativeZstd() ? wasmZstdModulePath() : undefined,
    );
    // Loaded here, not imported: see node-zlib.ts.
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    this.#workers = Array.from({ length: this.size }, () => {
      const worker = new Worker(source, { eval: true });
      liveWorkers++;
      const exited = new Promise<void>((resolve) =>
        worker.once('exit', (code) => {
          liveWorkers--;
          // A worker that ends while the pool is open takes its batches with it:
          // they must reject, not wait forever.
          if (!this.#closed) {
            this.#breakDown(
              new Qcow2Error('DECOMPRESS_FAILED', `an inflate worker exited (code ${code})`, {
                path: [...this.#jobs.values()][0]?.wheres[0]?.path ?? '',
                structure: 'compressed cluster',
              }),
            );
          }
          resolve();
        }),
      );
      worker.on('message', (reply: WorkerReply) => this.#settle(reply));
      worker.on('error', (error) =>
        this.#breakDown(
          new Qcow2Error('DECOMPRESS_FAILED', `an inflate worker failed: ${error.message}`, {
            path: [...this.#jobs.values()][0]?.wheres[0]?.path ?? '',
            structure: 'compressed cluster',
            cause: error,
          }),
        ),
      );
      // After the listeners (adding a 'message' listener refs the port again).
      worker.unref();
      return { worker, busy: 0, exited };
    });
    return this.#workers;
  }

  #settle(reply: WorkerReply): void {
    const job = this.#jobs.get(reply.id);
    this.#jobs.delete(reply.id);
    if (job) {
      job.settle(reply);
    } else if ('input' in reply) {
      // Moved back from the worker after its job was failed: memory to reuse.
      this.#ours.add(reply.input);
      this.release(new Uint8Array(reply.input));
    }
  }

  #closedError(path: string): Qcow2Error {
    return new Qcow2Error('DECOMPRESS_FAILED', 'the inflate pool was closed', {
      path,
      structure: 'compressed cluster',
    });
  }

  async #runFileJobInline(job: FileJob): Promise<FileJobResult> {
    this.#inlineTools ??= inlineDecodeTools(this.type);
    const tools = await this.#inlineTools;
    const { type, clusterSize } = this;
    return runFileJob(
      process.getBuiltinModule('node:fs'),
      (input, out, at) => decodeClusterInto(tools, type, input, clusterSize, out, at),
      this.#inlineScratch,
      job,
    );
  }

  async #inflateInline(
    input: Uint8Array,
    spans: number[],
    wheres: DecompressWhere[],
    out: ArrayBuffer,
  ): Promise<Buffer> {
    this.#inlineTools ??= inlineDecodeTools(this.type);
    const tools = await this.#inlineTools;
    const bytes = Buffer.from(out);
    for (let i = 0; i < wheres.length; i++) {
      const start = spans[2 * i] as number;
      const detail = decodeClusterInto(
        tools,
        this.type,
        input.subarray(start, start + (spans[2 * i + 1] as number)),
        this.clusterSize,
        bytes,
        i * this.clusterSize,
      );
      if (detail !== undefined) {
        this.release(bytes);
        throw decompressFailure(wheres[i] as DecompressWhere, this.type, detail);
      }
    }
    this.release(input);
    return bytes;
  }

  /**
   * A worker died: the pool is unusable. Its jobs reject once no worker runs any
   * more, not before: a FileJob on another worker may still be writing to an
   * output its caller would otherwise close (and the descriptor be reused).
   */
  #breakDown(error: Qcow2Error): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.#failure = error;
    const workers = this.#workers ?? [];
    void Promise.all(workers.map(stopWorker)).finally(() => this.#fail(error));
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    for (const job of this.#jobs.values()) job.reject(this.#failure);
    this.#jobs.clear();
  }
}

/** This thread's reused decoder handles (calls never interleave: they are synchronous). */
let inlineRawInflater: RawInflateInto | undefined | null = null;
let inlineZstdDecoder: RawInflateInto | undefined | null = null;

/** The decoder's tools on this thread (WebAssembly loaded on first use, not at start-up). */
export async function inlineDecodeTools(type: CompressionType): Promise<DecodeTools> {
  const zlib = nodeZlib();
  const zstd = nativeZstd();
  if (type === 'zlib' && inlineRawInflater === null) inlineRawInflater = openRawInflater(zlib);
  if (type === 'zstd' && inlineZstdDecoder === null) inlineZstdDecoder = openZstdDecoder(zlib);
  return {
    inflateRawSync: zlib.inflateRawSync,
    inflateRawInto: inlineRawInflater ?? undefined,
    zstdDecodeInto: inlineZstdDecoder ?? undefined,
    zstdDecompressSync: zstd,
    wasmZstd: type === 'zstd' && !zstd ? await loadWasmZstd() : undefined,
    parseZstdFrame,
    syncFlush: zlib.constants.Z_SYNC_FLUSH,
  };
}
