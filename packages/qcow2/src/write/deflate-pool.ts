import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CompressionType } from '../compression/cluster-decoder.js';
import { bindZstdModule, loadWasmZstd, wasmZstdModulePath } from '../compression/wasm-zstd.js';
import {
  compressedOrThrow,
  type DeflateOutcome,
  deflateCluster,
  deflateWith,
} from './deflate-cluster.js';
import { zstdCompressedOrThrow, zstdCompressWith } from './zstd-cluster.js';

/**
 * The worker: deflateWith (from its source text, so there is one definition)
 * with the same pako build, over a batch of clusters per message. Given as
 * source rather than a file of its own so it runs the same from the
 * TypeScript sources (tests) and from dist/.
 */
function workerSource(pakoPath: string): string {
  return `
const { parentPort } = require('node:worker_threads');
const { Deflate } = require(${JSON.stringify(pakoPath)});
const deflateWith = ${deflateWith.toString()};
parentPort.on('message', ({ id, clusters }) => {
  const outcomes = clusters.map((cluster) => deflateWith(Deflate, cluster));
  parentPort.postMessage({ id, outcomes });
});
`;
}

/** The same for zstd: zstdCompressWith over libzstd in WebAssembly (compiled once per worker). */
function zstdWorkerSource(modulePath: string): string {
  return `
const { parentPort } = require('node:worker_threads');
const bindZstdModule = ${bindZstdModule.toString()};
const zstdCompressWith = ${zstdCompressWith.toString()};
const ready = require(${JSON.stringify(modulePath)})().then(bindZstdModule);
parentPort.on('message', async ({ id, clusters }) => {
  const zstd = await ready;
  const outcomes = clusters.map((cluster) => zstdCompressWith(zstd, cluster));
  parentPort.postMessage({ id, outcomes });
});
`;
}

interface Job {
  resolve(results: Array<Uint8Array | undefined>): void;
  reject(error: unknown): void;
}

interface PoolWorker {
  worker: Worker;
  busy: number;
}

/**
 * Deflates clusters on worker threads, QEMU's way (deflateCluster, or
 * zstdCompressWith for a zstd image), so that `convert -c` compresses several
 * clusters at once while the results are still written one at a time in guest
 * order. With one core (or `size` 0) it compresses on the calling thread.
 */
export class DeflatePool {
  readonly size: number;
  readonly type: CompressionType;
  #workers: PoolWorker[] | undefined;
  readonly #jobs = new Map<number, Job>();
  #nextId = 0;
  #failure: unknown;

  constructor(size = Math.min(availableParallelism(), 8), type: CompressionType = 'zlib') {
    this.size = size > 1 ? size : 0;
    this.type = type;
  }

  /** Compresses each cluster; undefined for those that do not shrink. */
  deflate(clusters: Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    if (this.size === 0) {
      if (this.type === 'zlib') return Promise.resolve(clusters.map(deflateCluster));
      return loadWasmZstd().then((zstd) =>
        clusters.map((cluster) => zstdCompressedOrThrow(zstdCompressWith(zstd, cluster))),
      );
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const workers = this.#start();
    const target = workers.reduce((best, candidate) =>
      candidate.busy < best.busy ? candidate : best,
    );
    const id = this.#nextId++;
    target.busy++;
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, {
        resolve: (results) => {
          target.busy--;
          resolve(results);
        },
        reject: (error) => {
          target.busy--;
          reject(error);
        },
      });
      // Own copies, moved (not cloned) to the worker: a view into a larger
      // buffer would be cloned with the whole buffer behind it.
      const copies = clusters.map((cluster) => new Uint8Array(cluster));
      target.worker.postMessage(
        { id, clusters: copies },
        copies.map((copy) => copy.buffer),
      );
    });
  }

  async close(): Promise<void> {
    const workers = this.#workers ?? [];
    this.#workers = undefined;
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }

  #start(): PoolWorker[] {
    if (this.#workers) return this.#workers;
    const source =
      this.type === 'zlib'
        ? workerSource(createRequire(import.meta.url).resolve('pako'))
        : zstdWorkerSource(wasmZstdModulePath());
    const orThrow = this.type === 'zlib' ? compressedOrThrow : zstdCompressedOrThrow;
    this.#workers = Array.from({ length: this.size }, () => {
      const worker = new Worker(source, { eval: true });
      worker.unref();
      worker.on('message', ({ id, outcomes }: { id: number; outcomes: DeflateOutcome[] }) => {
        const job = this.#jobs.get(id);
        this.#jobs.delete(id);
        let results: Array<Uint8Array | undefined>;
        try {
          results = outcomes.map(orThrow);
        } catch (error) {
          job?.reject(error);
          return;
        }
        job?.resolve(results);
      });
      worker.on('error', (error) => this.#fail(error));
      return { worker, busy: 0 };
    });
    return this.#workers;
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    for (const job of this.#jobs.values()) job.reject(error);
    this.#jobs.clear();
  }
}
