import {
  type BlockDevice,
  BlockIoError,
  type FileDevice,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { SECTOR_SIZE } from '../format/stream-format.js';
import { checkObjectSize, DEFAULT_OBJECT_SIZE, MAX_BUFFERED_OBJECT_SIZE } from '../object-size.js';
import {
  compareObject,
  fillRecord,
  NO_BUFFERS,
  type ObjectBuffers,
  objectBuffers,
} from './compare-object.js';
import type { SharedRanges } from './equality-hints.js';
import { FileScanner, scanThreads } from './file-scanner.js';

export interface DiffOptions extends LongRunningOptions {
  /** Object size (power of two, 512 B to 256 MiB). Default 4 MiB. */
  objectSize?: number | undefined;
  /**
   * Objects compared at once (each holds an object buffer and two pieces). Default: the
   * devices' queue depth, at least 1, at most 8. With compare threads: objects handed
   * to the threads ahead (no buffers each); default 16 per thread, at most 64.
   */
  concurrency?: number | undefined;
  /** Ranges both sides store in the same place (QCOW2 host clusters, Sheepdog objects). */
  sharedRanges?: SharedRanges | undefined;
  /**
   * Bytes read from each side at a time (a multiple of 512). Default: 64 KiB when both
   * devices complete requests synchronously (queue depth 1: local files, memory), so
   * each piece is compared while it is in the CPU cache; else the whole object, so a
   * network or the thread pool gets few, large requests. With compare threads: the
   * piece each thread reads (default 128 KiB).
   */
  readSize?: number | undefined;
  /**
   * Two files (FileDevice: regular files or block devices) are read and compared on
   * this many worker threads, which read them directly and hand back only where they
   * differ; 0 compares on the calling thread. Ignored for other devices. Default: one
   * per core (at most 4) when there is more than one core and "to" is at least 64 MiB.
   */
  compareThreads?: number | undefined;
}

/** See DiffOptions.readSize: small enough that both sides' pieces stay in a core's L2 cache. */
const SYNC_READ_SIZE = 64 << 10;

/** One record of the diff: `data` is valid until the iteration goes on. */
export interface DiffRecord {
  idx: number;
  offset: number;
  data: Buffer;
}

/** Counters of a diff, filled in as it runs. */
export interface DiffStats {
  /** Objects of the "to" disk (the loop's range, as dog counts them). */
  objects: number;
  /** Objects skipped unread: both sides unallocated or zero. */
  objectsSkippedUnallocated: number;
  /** Objects skipped unread: both sides store them in the same place (shared). */
  objectsSkippedShared: number;
  /** Objects read and compared. */
  objectsCompared: number;
  records: number;
  /** Bytes read from both disks. */
  bytesRead: number;
  /** Bytes of both disks never read, because they were known equal. */
  bytesSkipped: number;
  /** Bytes of record data. */
  dataBytes: number;
}

/**
 * The Sheepdog backup algorithm (formats/sheepdog.md §1.3) over two devices: for each
 * object of "to", skip it when nothing can differ (both unallocated or zero, or the same
 * stored bytes), else compare it, trim equal leading and trailing sectors, and yield at
 * most one record covering the first to the last differing sector. Objects are read
 * `concurrency` at a time; records come out in object order.
 */
export async function* diffObjects(
  from: BlockDevice,
  to: BlockDevice,
  stats: DiffStats,
  options: DiffOptions = {},
): AsyncGenerator<DiffRecord> {
  const objectSize = checkDiffArguments(from, to, options.objectSize);
  const count = Math.ceil(to.size / objectSize);
  stats.objects = count;
  const threads = scanThreads(from, to, options.compareThreads);
  const requestedReadSize =
    options.readSize === undefined
      ? undefined
      : Math.min(objectSize, checkReadSize(options.readSize));
  // With compare threads, up to 16 objects per thread are handed out ahead of the one
  // whose record is due next (at most 64): the threads go on while this thread waits
  // for a CPU, for a write, or for one thread the scheduler set aside (a busy machine).
  // That costs no memory: records are read when their turn comes, into one buffer.
  const concurrency = Math.max(
    1,
    options.concurrency !== undefined
      ? Math.min(threads > 0 ? 64 : 8, options.concurrency)
      : threads > 0
        ? Math.min(64, 16 * threads)
        : Math.min(8, from.queueDepth ?? 4, to.queueDepth ?? 4),
  );
  const readSize = requestedReadSize ?? defaultReadSize(from, to, objectSize);
  const progress = new ProgressTracker('compare', to.size, options.onProgress);
  const scanner =
    threads > 0
      ? await FileScanner.start(from as FileDevice, to as FileDevice, threads, requestedReadSize)
      : undefined;
  const pool: ObjectBuffers[] = [];
  const take = (): ObjectBuffers =>
    scanner ? NO_BUFFERS : (pool.pop() ?? objectBuffers(objectSize, readSize));
  // With a scanner: the buffer every record is read into in turn (see concurrency).
  let recordBuffer: Buffer | undefined;

  const pending = new Map<number, Promise<Compared>>();
  let scheduled = 0;
  const schedule = () => {
    while (pending.size < concurrency && scheduled < count) {
      const idx = scheduled++;
      const buffers = take();
      const work = compareObject(
        from,
        to,
        idx,
        objectSize,
        buffers,
        options.sharedRanges,
        scanner,
      ).then((outcome) => ({ outcome, buffers }));
      // Settled later in order; a failure is rethrown there, not reported as unhandled.
      work.catch(() => {});
      pending.set(idx, work);
    }
  };

  try {
    for (let idx = 0; idx < count; idx++) {
      throwIfAborted(options.signal, to.name);
      schedule();
      const { outcome, buffers } = await (pending.get(idx) as Promise<Compared>);
      pending.delete(idx);
      if (outcome.pending) {
        recordBuffer ??= Buffer.allocUnsafe(objectSize);
        outcome.record = await fillRecord(to, outcome.pending, recordBuffer, outcome);
      }
      stats.bytesRead += outcome.bytesRead;
      stats.bytesSkipped += outcome.bytesSkipped;
      if (outcome.kind === 'skipped-unallocated') stats.objectsSkippedUnallocated++;
      else if (outcome.kind === 'skipped-shared') stats.objectsSkippedShared++;
      else stats.objectsCompared++;
      if (outcome.record) {
        stats.records++;
        stats.dataBytes += outcome.record.data.byteLength;
        yield outcome.record;
      }
      if (buffers !== NO_BUFFERS) pool.push(buffers);
      progress.advance(Math.min(objectSize, to.size - idx * objectSize));
    }
    progress.finish();
  } finally {
    // Let reads still in flight (after a failure or an early return) settle first.
    await scanner?.close();
    await Promise.allSettled(pending.values());
  }
}

function defaultReadSize(from: BlockDevice, to: BlockDevice, objectSize: number): number {
  const synchronous = from.queueDepth === 1 && to.queueDepth === 1;
  return synchronous ? Math.min(SYNC_READ_SIZE, objectSize) : objectSize;
}

function checkReadSize(readSize: number): number {
  if (!Number.isSafeInteger(readSize) || readSize < SECTOR_SIZE || readSize % SECTOR_SIZE !== 0) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `the read size must be a positive multiple of 512 bytes, not ${readSize}`,
    );
  }
  return readSize;
}

/** Checks what a diff needs before anything is created; returns the object size. */
export function checkDiffArguments(
  from: BlockDevice,
  to: BlockDevice,
  objectSize: number | undefined,
): number {
  const size = checkObjectSize(objectSize ?? DEFAULT_OBJECT_SIZE, MAX_BUFFERED_OBJECT_SIZE);
  for (const device of [from, to]) {
    if (device.size % SECTOR_SIZE !== 0) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `the disk is ${device.size} bytes, not a whole number of 512-byte sectors`,
        { path: device.name },
      );
    }
  }
  return size;
}

interface Compared {
  outcome: Awaited<ReturnType<typeof compareObject>>;
  buffers: ObjectBuffers;
}
