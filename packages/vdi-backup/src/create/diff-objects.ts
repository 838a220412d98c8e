import {
  type BlockDevice,
  BlockIoError,
  type FileDevice,
  type LongRunningOptions,
  ProgressTracker,
  Semaphore,
  throwIfAborted,
} from '@x/blockio';
import { SECTOR_SIZE } from '../format/stream-format.js';
import { checkObjectSize, DEFAULT_OBJECT_SIZE, MAX_BUFFERED_OBJECT_SIZE } from '../object-size.js';
import {
  type BufferLender,
  type CompareContext,
  compareObject,
  fillRecord,
  NO_BUFFERS,
  type ObjectBuffers,
  objectBuffers,
} from './compare-object.js';
import type { SharedRanges } from './equality-hints.js';
import { FileScanner, scanThreads } from './file-scanner.js';
import type { HostFiles } from './host-files.js';

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
   * The files two disks keep their data in, and where (QCOW2 views of one image): the
   * ranges not known equal are read from those files with synchronous preads, 64 KiB
   * of each side at a time, and compared while in the CPU cache (on `compareThreads`
   * worker threads if asked for); objects kept otherwise (compressed clusters, a
   * backing file's data) are read through the devices.
   */
  hostFiles?: HostFiles | undefined;
  /**
   * Bytes read from each side at a time (a multiple of 512). Default: 64 KiB when both
   * devices complete requests synchronously (queue depth 1: local files, memory), so
   * each piece is compared while it is in the CPU cache; else the whole object, so a
   * network or the thread pool gets few, large requests. With compare threads on two
   * files: the piece each thread reads (default 128 KiB). With `hostFiles`, the files
   * are read 64 KiB (threads: 128 KiB) at a time and this is for the objects read
   * through the devices.
   */
  readSize?: number | undefined;
  /**
   * Two files (FileDevice: regular files or block devices), or the `hostFiles` of two
   * disks, are read and compared on this many worker threads, which read them
   * directly and hand back only where they differ; 0 compares on the calling thread.
   * Ignored for other devices. Default for two files: one per core (at most 4) when
   * there is more than one core and "to" is at least 64 MiB; for `hostFiles`: 0.
   */
  compareThreads?: number | undefined;
}

/** See DiffOptions.readSize: small enough that both sides' pieces stay in a core's L2 cache. */
const SYNC_READ_SIZE = 64 << 10;

/**
 * One record of the diff: `data` stays valid until the iteration goes on past the
 * next record, so a consumer may still be writing it while the next one is made
 * (BackupWriter's `dataStays`).
 */
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
  /**
   * Bytes of both disks never read: known equal, or (host files) "from"'s bytes between
   * an object's first and last difference, which the record takes from "to" anyway.
   */
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
  const hostFiles = options.hostFiles;
  // Host files are compared on this thread unless threads are asked for: their
  // changed ranges are few (shared clusters are never read), so starting threads
  // costs more than it saves, and this thread's synchronous reads leave the pool to
  // write the stream meanwhile (bench/bench.mjs, create-qcow2).
  const threads = hostFiles
    ? scanThreads(hostFiles.from, hostFiles.to, options.compareThreads ?? 0)
    : scanThreads(from, to, options.compareThreads);
  const requestedReadSize =
    options.readSize === undefined
      ? undefined
      : Math.min(objectSize, checkReadSize(options.readSize));
  // Objects compared at once on this thread, each with its buffers.
  const hereAtOnce = Math.min(8, from.queueDepth ?? 4, to.queueDepth ?? 4);
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
        : hereAtOnce,
  );
  const readSize = requestedReadSize ?? defaultReadSize(from, to, objectSize);
  const progress = new ProgressTracker('compare', to.size, options.onProgress);
  const scanner =
    threads === 0
      ? undefined
      : hostFiles
        ? await FileScanner.start(hostFiles.from, hostFiles.to, threads, undefined, false)
        : await FileScanner.start(from as FileDevice, to as FileDevice, threads, requestedReadSize);
  const context: CompareContext = { sharedRanges: options.sharedRanges, scanner, hostFiles };
  if (scanner && hostFiles) {
    // Objects the host files do not hold are read here, a few at a time.
    const lend: BufferLender = {
      slots: new Semaphore(Math.max(1, hereAtOnce)),
      pool: [],
      make: () => objectBuffers(objectSize, readSize),
    };
    context.lend = lend;
  }
  const pool: ObjectBuffers[] = [];
  const take = (): ObjectBuffers =>
    scanner ? NO_BUFFERS : (pool.pop() ?? objectBuffers(objectSize, readSize));
  // With a scanner: the two buffers records are read into in turn (see concurrency):
  // one for the record being made, one for the record being written (DiffRecord).
  const recordBuffers: Buffer[] = [];
  // The buffers of the last record yielded, back to the pool once the next is yielded.
  let held: ObjectBuffers | undefined;

  const pending = new Map<number, Promise<Compared>>();
  let scheduled = 0;
  const schedule = () => {
    while (pending.size < concurrency && scheduled < count) {
      const idx = scheduled++;
      // Taken from the pool only by an object that is read (most are decided unread).
      let buffers: ObjectBuffers | undefined;
      const lazily = () => {
        buffers ??= take();
        return buffers;
      };
      const work = compareObject(from, to, idx, objectSize, lazily, context).then((outcome) => ({
        outcome,
        buffers: buffers ?? NO_BUFFERS,
      }));
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
        const turn = stats.records % 2;
        recordBuffers[turn] ??= Buffer.allocUnsafe(objectSize);
        const into = recordBuffers[turn] as Buffer;
        outcome.record = await fillRecord(to, outcome.pending, into, outcome);
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
        // The consumer is done with the record before this one.
        if (held !== undefined) pool.push(held);
        held = buffers !== NO_BUFFERS && outcome.pending === undefined ? buffers : undefined;
        if (buffers !== NO_BUFFERS && held === undefined) pool.push(buffers);
      } else if (buffers !== NO_BUFFERS) pool.push(buffers);
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
