import { BlockIoError, type FileDevice, fromSystemError, throwIfAborted } from '@x/blockio';
import { decompressFailure } from './decompress-failure.js';
import type { InflatePool } from './inflate-pool.js';
import { FILE_ITEM_FIELDS, type FileJobFailure, type FileJobResult } from './inflate-to-file.js';
import type { CompressedPiece } from './ordered-inflater.js';

/**
 * Measured on the 4 GiB deflate bench image (4 rounds, load 9-10, interleaved): 1, 2 and
 * 4 MiB jobs with 6 in flight, and 2 MiB with 4 or 10, all took 1.4-1.9 s, no setting
 * better than the noise; 1 MiB jobs peaked at 90-95 MiB RSS against 102-113 MiB, and
 * their writes are at most 1 MiB anyway (see runFileJob's WRITE_LIMIT).
 */
export interface CompressedFileCopierOptions {
  /** Inflated bytes per job (at least one cluster). Default 1 MiB. */
  batchBytes?: number;
  /** Jobs in flight before `add` waits for the oldest. Default 3 per worker, at least 2. */
  depth?: number;
  /**
   * Checked before each job is sent: an L2 table of 2 MiB clusters covers 512 GiB, so
   * the caller's check per table alone could leave Ctrl-C unanswered for the whole copy.
   */
  signal?: AbortSignal | undefined;
}

interface InFlight {
  items: Float64Array;
  done: Promise<FileJobResult>;
}

/**
 * Copies compressed clusters of an image file into a raw output file the way
 * OrderedInflater feeds a consumer, but with the I/O on the inflate pool's
 * workers: each job is a list of pieces (host span, guest offset), and the
 * worker reads their compressed bytes, inflates them and writes them at their
 * guest offsets itself (runFileJob). The main thread only plans: no buffers
 * cross threads, no inflated byte is copied, and writes of guest-contiguous
 * clusters go out as one pwrite.
 *
 * The order of the writes does not matter (positional, disjoint ranges), so
 * jobs run in any order; at most `depth` are in flight (bounded memory: each
 * worker reuses one batch of buffers), and results are looked at oldest first,
 * so the error reported is the first one in guest order among those that ran.
 * Every job has settled when finish() or abandon() returns: no worker touches
 * either file descriptor after that.
 *
 * The output must read as zeros where nothing is written (all-zero clusters
 * are left as holes) and already have its final size.
 */
export class CompressedFileCopier {
  /** Guest bytes copied (holes included). */
  bytesRead = 0;
  /** Bytes written to the output. */
  bytesWritten = 0;
  readonly #file: FileDevice;
  readonly #target: FileDevice;
  readonly #pool: InflatePool;
  readonly #perJob: number;
  readonly #depth: number;
  readonly #signal: AbortSignal | undefined;
  #items: Float64Array;
  #count = 0;
  readonly #inFlight: InFlight[] = [];

  constructor(
    file: FileDevice,
    target: FileDevice,
    pool: InflatePool,
    options: CompressedFileCopierOptions = {},
  ) {
    this.#file = file;
    this.#target = target;
    this.#pool = pool;
    this.#perJob = Math.max(1, Math.floor((options.batchBytes ?? 1 << 20) / pool.clusterSize));
    this.#depth = Math.max(1, options.depth ?? Math.max(2, pool.size * 3));
    this.#signal = options.signal;
    this.#items = new Float64Array(this.#perJob * FILE_ITEM_FIELDS);
    // The first compressed cluster is here: boot the workers while the batch fills.
    pool.warm();
  }

  async add(piece: CompressedPiece): Promise<void> {
    const at = this.#count++ * FILE_ITEM_FIELDS;
    // The last sector may reach past the end of the file: it reads as zeros in
    // QEMU, and is simply left out here (as OrderedInflater does).
    const end = Math.max(
      piece.hostOffset,
      Math.min(this.#file.size, piece.hostOffset + piece.hostLength),
    );
    const items = this.#items;
    items[at] = piece.hostOffset;
    items[at + 1] = end - piece.hostOffset;
    items[at + 2] = piece.clusterOffset;
    items[at + 3] = piece.offset;
    items[at + 4] = piece.length;
    if (this.#count === this.#perJob) await this.#submit();
  }

  /** Copies everything added so far; throws the first failure in guest order. */
  async finish(): Promise<void> {
    await this.#submit();
    while (this.#inFlight.length > 0) await this.#settleOldest();
  }

  /** After a failure elsewhere: waits until every job has settled, reports nothing. */
  async abandon(): Promise<void> {
    this.#count = 0;
    const jobs = this.#inFlight.splice(0);
    await Promise.allSettled(jobs.map((job) => job.done));
  }

  async #submit(): Promise<void> {
    if (this.#count === 0) return;
    throwIfAborted(this.#signal, this.#file.name);
    const items = this.#items.subarray(0, this.#count * FILE_ITEM_FIELDS);
    // The job takes its own copy (moved to the worker); this one is refilled.
    const own = new Float64Array(items);
    this.#count = 0;
    const done = this.#pool.runFileJob(
      { inFd: this.#file.handle.fd, outFd: this.#target.handle.fd, items: own },
      this.#file.name,
    );
    // Rejections are seen when the job is settled (or abandoned), not before.
    done.catch(() => {});
    this.#inFlight.push({ items: new Float64Array(items), done });
    while (this.#inFlight.length > this.#depth) await this.#settleOldest();
  }

  async #settleOldest(): Promise<void> {
    const job = this.#inFlight.shift() as InFlight;
    const result = await job.done;
    if (result.failure) throw this.#error(job.items, result.failure);
    this.bytesRead += result.guestBytes;
    this.bytesWritten += result.bytesWritten;
  }

  /** The typed error for what a job reported. */
  #error(items: Float64Array, failure: FileJobFailure): Error {
    const at = failure.piece * FILE_ITEM_FIELDS;
    const cause = Object.assign(new Error(failure.detail), { code: failure.code });
    switch (failure.kind) {
      case 'decode':
        return decompressFailure(
          {
            path: this.#file.name,
            offset: items[at] as number,
            guestOffset: items[at + 2] as number,
          },
          this.#pool.type,
          failure.detail,
        );
      case 'short-read':
        return new BlockIoError(
          'SHORT_READ',
          `${failure.detail}; did it shrink while being read?`,
          { path: this.#file.name, offset: failure.offset },
        );
      case 'read':
        return fromSystemError(cause, `read ${failure.length} bytes`, {
          path: this.#file.name,
          offset: failure.offset,
        });
      case 'write':
        return fromSystemError(cause, `write ${failure.length} bytes`, {
          path: this.#target.name,
          offset: failure.offset,
        });
    }
  }
}
