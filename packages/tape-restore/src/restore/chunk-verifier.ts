import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkBlobCrc, verifyChunk } from '../blob.js';
import { TapeRestoreError, type TapeRestoreErrorOptions } from '../errors.js';
import { DataBlobHeader, MAX_BLOB_PLAINTEXT } from '../format/blob.js';

/**
 * Checks chunks before they are inserted (§9 phase 2, §11.7): CRC, and for unencrypted
 * chunks decompression and SHA-256 against the digest. That is most of the CPU of a
 * restore, so it runs on worker threads where there is more than one core; the tape is
 * read and chunks are written on the main thread meanwhile. `verify` resolves to the
 * blob (moved to the worker and back) or rejects with BAD_CRC / BAD_DIGEST / BAD_BLOB.
 */
export interface ChunkVerifier {
  verify(digest: Uint8Array, blob: Buffer, where: TapeRestoreErrorOptions): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * The worker: the same checks as verifyChunk, on plain bytes. zstd through node:zlib
 * where it has it, else fzstd (required by path: the worker has no module resolution
 * of its own when it runs from a bundle).
 */
function workerSource(fzstdPath: string): string {
  return `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const { createHash } = require('node:crypto');
const HEADER = ${DataBlobHeader.size};
const LIMIT = ${MAX_BLOB_PLAINTEXT};
let fzstd;
function decompress(data) {
  if (zlib.zstdDecompressSync) return zlib.zstdDecompressSync(data, { maxOutputLength: LIMIT });
  fzstd ??= require(${JSON.stringify(fzstdPath)});
  const parts = [];
  let produced = 0;
  const stream = new fzstd.Decompress((chunk) => {
    produced += chunk.byteLength;
    if (produced > LIMIT) throw new Error('it decompresses to more than ' + LIMIT + ' bytes');
    parts.push(chunk);
  });
  stream.push(data, true);
  return parts;
}
parentPort.on('message', ({ id, blob, compressed }) => {
  const bytes = new Uint8Array(blob);
  const result = { id, blob, crc: 0, digest: undefined, error: undefined };
  try {
    result.crc = zlib.crc32(bytes.subarray(HEADER));
    const data = bytes.subarray(HEADER);
    const hash = createHash('sha256');
    if (compressed) {
      const out = decompress(data);
      if (Array.isArray(out)) for (const part of out) hash.update(part);
      else hash.update(out);
    } else {
      hash.update(data);
    }
    result.digest = hash.digest();
  } catch (error) {
    result.error = String(error && error.message || error);
  }
  parentPort.postMessage(result, [blob]);
});
`;
}

interface Job {
  resolve(value: Buffer): void;
  reject(error: unknown): void;
  digest: Uint8Array;
  where: TapeRestoreErrorOptions;
  crc: number;
}

/** On the calling thread (one core, or `threads: 0`). */
class InlineVerifier implements ChunkVerifier {
  async verify(digest: Uint8Array, blob: Buffer, where: TapeRestoreErrorOptions): Promise<Buffer> {
    await verifyChunk(digest, blob, where);
    return blob;
  }
  async close(): Promise<void> {}
}

class WorkerVerifier implements ChunkVerifier {
  readonly #workers: Array<{ worker: Worker; busy: number }>;
  readonly #jobs = new Map<number, Job>();
  #nextId = 0;
  #failure: unknown;

  constructor(threads: number) {
    const source = workerSource(createRequire(import.meta.url).resolve('fzstd'));
    this.#workers = Array.from({ length: threads }, () => {
      const worker = new Worker(source, { eval: true });
      worker.unref();
      worker.on(
        'message',
        (message: {
          id: number;
          blob: ArrayBuffer;
          crc: number;
          digest?: Uint8Array;
          error?: string;
        }) => this.#done(message),
      );
      worker.on('error', (error) => this.#fail(error));
      return { worker, busy: 0 };
    });
  }

  verify(digest: Uint8Array, blob: Buffer, where: TapeRestoreErrorOptions): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    // Magic, length and stored CRC here (cheap, and typed errors are made here);
    // encrypted chunks get nothing more (§4), so they stay on this thread.
    const kind = checkBlobCrc(blob, where);
    if (kind === 'encrypted' || kind === 'encrypted-compressed') return Promise.resolve(blob);
    // A blob that is a view into a larger buffer cannot be moved alone: copy it.
    const own =
      blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength
        ? blob
        : Buffer.from(new Uint8Array(blob).buffer);
    const target = this.#workers.reduce((best, candidate) =>
      candidate.busy < best.busy ? candidate : best,
    );
    const id = this.#nextId++;
    target.busy++;
    return new Promise<Buffer>((resolve, reject) => {
      this.#jobs.set(id, {
        resolve: (value) => {
          target.busy--;
          resolve(value);
        },
        reject: (error) => {
          target.busy--;
          reject(error);
        },
        digest,
        where,
        crc: own.readUInt32LE(8),
      });
      target.worker.postMessage({ id, blob: own.buffer, compressed: kind === 'compressed' }, [
        own.buffer as ArrayBuffer,
      ]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map(({ worker }) => worker.terminate()));
  }

  #done(message: {
    id: number;
    blob: ArrayBuffer;
    crc: number;
    digest?: Uint8Array;
    error?: string;
  }): void {
    const job = this.#jobs.get(message.id);
    if (!job) return;
    this.#jobs.delete(message.id);
    const blob = Buffer.from(message.blob);
    if (message.crc !== job.crc) {
      job.reject(
        new TapeRestoreError('BAD_CRC', 'DataBlob CRC-32 does not match its data', {
          structure: 'DataBlob',
          ...job.where,
        }),
      );
    } else if (message.error !== undefined || !message.digest) {
      job.reject(
        new TapeRestoreError(
          'BAD_BLOB',
          `the zstd data of the DataBlob does not decompress: ${message.error}`,
          { structure: 'DataBlob', ...job.where },
        ),
      );
    } else if (!Buffer.from(message.digest).equals(Buffer.from(job.digest))) {
      job.reject(
        new TapeRestoreError(
          'BAD_DIGEST',
          `chunk ${Buffer.from(job.digest).toString('hex')} has SHA-256 ${Buffer.from(message.digest).toString('hex')}`,
          {
            structure: 'chunk',
            ...job.where,
          },
        ),
      );
    } else {
      job.resolve(blob);
    }
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    for (const job of this.#jobs.values()) job.reject(error);
    this.#jobs.clear();
  }
}

/** Worker threads when there is more than one core (at most 4), else the calling thread. */
export function createChunkVerifier(threads = Math.min(availableParallelism(), 4)): ChunkVerifier {
  return threads > 1 ? new WorkerVerifier(threads) : new InlineVerifier();
}
