import {
  type BlockDevice,
  type CopyResult,
  copy,
  eventLoopYielder,
  FileDevice,
  isZeroRange,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
  WriteBehind,
} from '@x/blockio';
import { CompressedFileCopier } from '../compression/compressed-to-file.js';
import { OrderedInflater } from '../compression/ordered-inflater.js';
import type { Qcow2Image } from '../image/qcow2-image.js';
import type { GuestMapping } from '../read/guest-mapping.js';
import { CopyThreads } from './copy-threads.js';
import type { WindowFaults } from './copy-windows.js';

/**
 * Without the copy threads: the largest single read and write of guest data (a host
 * run longer than this is split), and the size of the WriteBehind's slabs: writes go
 * out on libuv's pool while the next runs are read, SLABS of them at most (memory:
 * 16 MiB). qemu-img convert writes 2 MiB requests from several threads too.
 */
const RUN_LIMIT = 2 << 20;
const SLABS = 8;
/**
 * Writes handed to the kernel at once: one per libuv pool thread may run. Writes to
 * one file serialize on its inode lock, and qemu-img convert has one in flight, but
 * limiting ours (WriteBehind writesInFlight) measured mixed on the shared 2-core VM
 * (16 GiB convert, interleaved with qemu-img): at load 10-18, 2 in flight 0.92-0.96 x
 * qemu-img against 1.07-1.11 unlimited; at load 3, 4 pairs each, unlimited 1.00-1.04
 * against 1.08-1.10 for 2 and 3 (1 was slowest everywhere: 1.20). Unlimited kept.
 */
const WRITES_IN_FLIGHT = Number.POSITIVE_INFINITY;
/**
 * Runs that lie close together in the file are read with one request of up to
 * RUN_LIMIT bytes (the gaps, L2 tables or refcount blocks, are read and dropped):
 * an e2image file is thousands of one-cluster runs, and a read call costs more
 * than the few KiB of gap it saves.
 */
const WINDOW_GAP = 64 << 10;
/** L2 entries are looked at in slices of this many bytes; an all-zero slice is skipped unparsed. */
const L2_SLICE = 512;

/**
 * The copy threads (CopyThreads): how many, the largest window each reads at once (its
 * buffer; a window is read, then written while it is still in the CPU's cache), and the
 * bytes of windows per batch. The threads start once a batch is full: a copy of less
 * takes the WriteBehind path on this thread and never pays for starting them.
 * `threads` undefined: two, one on a one-core machine. `faults`: test hooks (copyWindows).
 * Tests change these; the package does not export them.
 *
 * Window size measured (16 GiB image holding 4 GiB, interleaved with qemu-img, 4 rounds
 * with the contenders' autogroup at nice -20 on the busy 2-core VM): 512 KiB 1.98-3.52 s,
 * 1 MiB 2.17-4.14 s, 256 KiB 2.56-5.90 s; qemu-img 4.45-5.24 s in the same rounds.
 */
export const copyThreadSettings: {
  threads: number | undefined;
  windowSize: number;
  batchBytes: number;
  /** Copy batches on this thread (WriteBehind) until a copy thread has started up. */
  copyWhileStarting: boolean;
  faults: WindowFaults | undefined;
} = {
  threads: undefined,
  windowSize: 512 << 10,
  batchBytes: 8 << 20,
  copyWhileStarting: true,
  faults: undefined,
};

/**
 * Copies the guest data of a QCOW2 image into a target that reads as zeros (a
 * new raw file), the way e2fsprogs' e2image -r image.qcow2 does (x-e2image uses it): walk the L1 and L2 tables
 * and copy each allocated cluster to its guest offset. Host-contiguous runs of
 * guest-contiguous clusters (an e2image -Q file is almost all such runs) are read
 * and written with one request each, straight from the data file, so guest data
 * is looked up once and never goes through the block-by-block read path. Into a
 * whole file, and once there is more than a batch of it, the copy threads move the
 * data (copy-threads.ts) while this thread walks the tables.
 *
 * Unallocated and zero clusters stay holes, as do all-zero clusters. Compressed
 * clusters are read in batches and inflated by the image's InflatePool, several
 * batches at once and bounded, while this thread goes on reading and writing
 * (OrderedInflater); they are written in guest order. Images with a backing file take
 * the generic device copy (the guest bytes of unallocated clusters come from it).
 */
export async function copyQcow2Clusters(
  image: Qcow2Image,
  target: BlockDevice,
  options: LongRunningOptions = {},
): Promise<CopyResult> {
  if (image.backing) {
    return copy(image, target, {
      signal: options.signal,
      onProgress: options.onProgress,
      phase: 'convert',
      targetIsZeroed: true,
    });
  }
  const writer = new RunWriter(image, target, options.signal);
  const progress = new ProgressTracker('convert', image.size, options.onProgress);
  const { clusterSize, l2Coverage, l2EntrySize } = image.geometry;
  const sliceCoverage = (L2_SLICE / l2EntrySize) * clusterSize;
  const mappings: GuestMapping[] = [];
  const tables = Math.ceil(image.size / l2Coverage);
  try {
    for (let l1Index = 0; l1Index < tables; l1Index++) {
      throwIfAborted(options.signal, image.name);
      const base = l1Index * l2Coverage;
      const end = Math.min(image.size, base + l2Coverage);
      const l2 = await image.l2TableFor(l1Index);
      if (l2) {
        const table = l2.table;
        for (let at = 0, start = base; at < table.byteLength && start < end; at += L2_SLICE) {
          // Most entries of a metadata image are empty: skip those slices with one memcmp.
          if (!isZeroRange(table, at, Math.min(table.byteLength, at + L2_SLICE))) {
            mappings.length = 0;
            await image.mapWithinL2(start, Math.min(end, start + sliceCoverage), mappings);
            for (const mapping of mappings) await writer.add(mapping);
          }
          start += sliceCoverage;
        }
      }
      progress.advance(end - base);
    }
    await writer.finish();
  } catch (error) {
    // Batches still being inflated settle before the caller closes the image.
    await writer.abandon();
    throw error;
  }
  throwIfAborted(options.signal, image.name);
  // The target is as long as the guest even when its end is a hole.
  if (target.size < image.size) await target.writeZeroes(target.size, image.size - target.size);
  progress.finish();
  return {
    bytesTotal: image.size,
    bytesRead: writer.bytesRead,
    bytesWritten: writer.bytesWritten,
    bytesZero: image.size - writer.bytesWritten,
  };
}

/** Gathers normal clusters into host- and guest-contiguous runs and copies each run at once. */
class RunWriter {
  bytesRead = 0;
  bytesWritten = 0;
  readonly #image: Qcow2Image;
  readonly #writes: WriteBehind;
  /** Windows being read (see #readWindow), and the first read that failed. */
  readonly #reads = new Set<Promise<void>>();
  #readFailure: { error: unknown } | undefined;
  // Reads and writes may complete synchronously (FileDevice on regular files):
  // give SIGINT, timers and progress output a turn now and then.
  readonly #maybeYield = eventLoopYielder();
  #guest = 0;
  #host = 0;
  #length = 0;
  #throughImage = false;
  // The window: host-ordered runs read with one request (parallel arrays, reused).
  readonly #windowGuest: number[] = [];
  readonly #windowHost: number[] = [];
  readonly #windowLength: number[] = [];
  #windowRuns = 0;
  #windowStart = 0;
  #windowEnd = 0;
  #inflater: OrderedInflater | undefined;
  #toFile: CompressedFileCopier | undefined;
  readonly #target: BlockDevice;
  /**
   * With the copy threads: windows waiting to be handed out (copyWindows layout) and
   * their bytes; the threads once started. Host runs are then at most `#runLimit`.
   */
  readonly #threadable: { source: FileDevice; target: FileDevice; threads: number } | undefined;
  #batch: number[] = [];
  #batchBytes = 0;
  #threads: CopyThreads | undefined;
  readonly #runLimit: number;
  readonly #signal: AbortSignal | undefined;

  constructor(image: Qcow2Image, target: BlockDevice, signal: AbortSignal | undefined) {
    this.#image = image;
    this.#target = target;
    this.#signal = signal;
    this.#writes = new WriteBehind(target, {
      slabSize: RUN_LIMIT,
      slabs: SLABS,
      writesInFlight: WRITES_IN_FLIGHT,
    });
    const source = image.dataFile;
    const threads =
      copyThreadSettings.threads ??
      Math.min(2, process.getBuiltinModule('node:os').availableParallelism());
    // The threads write through the descriptors: only into a whole file, not a slice.
    this.#threadable =
      threads > 0 &&
      source instanceof FileDevice &&
      !source.zeroExtends &&
      target instanceof FileDevice &&
      !target.readOnly
        ? { source, target, threads }
        : undefined;
    // A window never splits a cluster: zero clusters are found within windows.
    this.#runLimit = this.#threadable
      ? Math.min(RUN_LIMIT, Math.max(copyThreadSettings.windowSize, image.geometry.clusterSize))
      : RUN_LIMIT;
  }

  async add(mapping: GuestMapping): Promise<void> {
    // No backing file and a zeroed target: these read as zeros and stay holes.
    const type = mapping.type;
    if (type === 'unallocated' || type === 'zero-plain' || type === 'zero-alloc') return;
    if (type === 'compressed' && mapping.compressed) {
      await this.#addCompressed(mapping, mapping.compressed);
      return;
    }
    // Anything else without a host offset is read through the image.
    const throughImage = mapping.hostOffset === undefined;
    let guest = mapping.offset;
    let host = mapping.hostOffset ?? 0;
    let length = mapping.length;
    while (length > 0) {
      const continues =
        this.#length > 0 &&
        this.#throughImage === throughImage &&
        this.#guest + this.#length === guest &&
        (throughImage || this.#host + this.#length === host);
      if (!continues) {
        await this.flush();
        this.#guest = guest;
        this.#host = host;
        this.#throughImage = throughImage;
      }
      const take = Math.min(length, this.#runLimit - this.#length);
      this.#length += take;
      guest += take;
      host += take;
      length -= take;
      if (this.#length === this.#runLimit) await this.flush();
    }
  }

  /** Copies everything gathered so far. */
  async finish(): Promise<void> {
    await this.flush();
    await this.#drainWindow();
    await this.#finishBatches();
    await this.#settleReads();
    this.#throwIfReadFailed();
    await this.#inflater?.finish();
    if (this.#toFile) {
      await this.#toFile.finish();
      this.bytesRead += this.#toFile.bytesRead;
      this.bytesWritten += this.#toFile.bytesWritten;
    }
    await this.#writes.finish();
  }

  /** After a failure: lets the batches being inflated settle, writes nothing more. */
  async abandon(): Promise<void> {
    await this.#threads?.abandon();
    await this.#settleReads();
    await this.#inflater?.abandon();
    await this.#toFile?.abandon();
    await this.#writes.abandon();
  }

  async #addCompressed(
    mapping: GuestMapping,
    compressed: NonNullable<GuestMapping['compressed']>,
  ): Promise<void> {
    const piece = {
      clusterOffset: compressed.clusterOffset,
      offset: mapping.offset,
      length: mapping.length,
      hostOffset: compressed.descriptor.offset,
      hostLength: compressed.descriptor.length,
    };
    // A raw output file (zeroed, at its final size) is written by the inflate
    // workers themselves: see CompressedFileCopier.
    const target = this.#target;
    if (
      this.#toFile ||
      (!this.#inflater &&
        target instanceof FileDevice &&
        !target.readOnly &&
        target.size >= this.#image.size)
    ) {
      this.#toFile ??= new CompressedFileCopier(
        this.#image.file,
        target as FileDevice,
        this.#image.inflatePool,
        { signal: this.#signal },
      );
      await this.#toFile.add(piece);
      return;
    }
    this.#inflater ??= new OrderedInflater(
      this.#image.file,
      this.#image.inflatePool,
      async (offset, bytes) => {
        await this.#maybeYield();
        this.bytesRead += bytes.byteLength;
        // Copied into a slab: the inflated batch is reused once this returns, and
        // guest-contiguous clusters go out as one write.
        await this.#writeNonZero(offset, bytes, true);
      },
    );
    await this.#inflater.add(piece);
  }

  async flush(): Promise<void> {
    const length = this.#length;
    if (length === 0) return;
    this.#length = 0;
    if (!this.#throughImage) {
      await this.#queueHostRun(this.#guest, this.#host, length);
      return;
    }
    await this.#drainWindow();
    await this.#maybeYield();
    const slab = await this.#writes.acquire();
    try {
      const view = slab.subarray(0, length);
      await this.#image.read(this.#guest, view);
      this.bytesRead += length;
      await this.#writeNonZero(this.#guest, view, false);
    } finally {
      this.#writes.release(slab);
    }
  }

  async #queueHostRun(guest: number, host: number, length: number): Promise<void> {
    if (
      this.#windowRuns > 0 &&
      (host < this.#windowEnd ||
        host - this.#windowEnd > WINDOW_GAP ||
        host + length - this.#windowStart > this.#runLimit)
    ) {
      await this.#drainWindow();
    }
    if (this.#windowRuns === 0) this.#windowStart = host;
    const index = this.#windowRuns++;
    this.#windowGuest[index] = guest;
    this.#windowHost[index] = host;
    this.#windowLength[index] = length;
    this.#windowEnd = host + length;
  }

  async #drainWindow(): Promise<void> {
    const runs = this.#windowRuns;
    if (runs === 0) return;
    this.#windowRuns = 0;
    const start = this.#windowStart;
    const length = this.#windowEnd - start;
    if (this.#threadable) {
      // copyWindows layout: host offset, length, runs, then guest / offset / length each.
      const batch = this.#batch;
      batch.push(start, length, runs);
      for (let index = 0; index < runs; index++) {
        batch.push(
          this.#windowGuest[index] as number,
          (this.#windowHost[index] as number) - start,
          this.#windowLength[index] as number,
        );
      }
      this.#batchBytes += length;
      if (this.#batchBytes >= copyThreadSettings.batchBytes) await this.#sendBatch();
      return;
    }
    await this.#copyWindowBehind(start, length, {
      guest: this.#windowGuest.slice(0, runs),
      host: this.#windowHost.slice(0, runs),
      length: this.#windowLength.slice(0, runs),
    });
  }

  /** Hands the gathered windows to the copy threads, starting them on the first batch. */
  async #sendBatch(): Promise<void> {
    const threadable = this.#threadable;
    if (!threadable || this.#batch.length === 0) return;
    this.#threads ??= new CopyThreads({
      ...threadable,
      windowSize: this.#runLimit,
      blockSize: this.#image.geometry.clusterSize,
      signal: this.#signal,
      name: this.#image.name,
      faults: copyThreadSettings.faults,
    });
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    // Starting a thread takes 30-40 ms of CPU, and on a busy machine a few hundred ms:
    // meanwhile this thread copies the batches itself.
    const sent = await this.#threads.run(new Float64Array(batch), {
      unlessStarting: copyThreadSettings.copyWhileStarting,
    });
    if (!sent) await this.#copyBatchBehind(batch);
  }

  /**
   * The windows left at the end: to the threads when they run, else (a copy smaller
   * than one batch) on this thread, not worth starting them for.
   */
  async #finishBatches(): Promise<void> {
    if (this.#threads) {
      await this.#sendBatch();
      const threads = this.#threads;
      await threads.finish();
      this.bytesRead += threads.bytesRead;
      this.bytesWritten += threads.bytesWritten;
      return;
    }
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    await this.#copyBatchBehind(batch);
  }

  /** Copies the windows of `batch` (copyWindows layout) on this thread, through WriteBehind. */
  async #copyBatchBehind(batch: number[]): Promise<void> {
    for (let at = 0; at < batch.length; ) {
      const start = batch[at] as number;
      const length = batch[at + 1] as number;
      const runs = batch[at + 2] as number;
      at += 3;
      const window = { guest: [] as number[], host: [] as number[], length: [] as number[] };
      for (let index = 0; index < runs; index++, at += 3) {
        window.guest.push(batch[at] as number);
        window.host.push(start + (batch[at + 1] as number));
        window.length.push(batch[at + 2] as number);
      }
      await this.#copyWindowBehind(start, length, window);
    }
  }

  /** Reads one window into a slab (not awaited: several are read at once) and writes its runs behind. */
  async #copyWindowBehind(
    start: number,
    length: number,
    runs: { guest: number[]; host: number[]; length: number[] },
  ): Promise<void> {
    await this.#maybeYield();
    this.#throwIfReadFailed();
    // Bounded: a read holds a slab until its writes have gone out.
    const slab = await this.#writes.acquire();
    const read = this.#readWindow(slab, start, length, runs).catch((error: unknown) => {
      this.#readFailure ??= { error };
    });
    this.#reads.add(read);
    void read.finally(() => this.#reads.delete(read));
  }

  /**
   * Reads one window and starts the writes of its runs, without being awaited:
   * several windows are read at once (on libuv's pool when the image is opened
   * with asynchronous I/O), beside the writes of earlier ones.
   */
  async #readWindow(
    slab: Buffer,
    start: number,
    length: number,
    runs: { guest: number[]; host: number[]; length: number[] },
  ): Promise<void> {
    try {
      const window = slab.subarray(0, length);
      await this.#image.dataFile.read(start, window);
      this.bytesRead += length;
      for (let index = 0; index < runs.guest.length; index++) {
        const from = (runs.host[index] as number) - start;
        await this.#writeNonZero(
          runs.guest[index] as number,
          window.subarray(from, from + (runs.length[index] as number)),
          false,
        );
      }
    } finally {
      this.#writes.release(slab);
    }
  }

  async #settleReads(): Promise<void> {
    while (this.#reads.size > 0) await Promise.all(this.#reads);
  }

  #throwIfReadFailed(): void {
    if (this.#readFailure !== undefined) throw this.#readFailure.error;
  }

  /**
   * Writes `bytes` at guest `offset`, leaving all-zero clusters as holes: from the
   * slab they are in, or copied (`copy`) when they are not in a slab.
   */
  async #writeNonZero(offset: number, bytes: Buffer, copy: boolean): Promise<void> {
    const clusterSize = this.#image.geometry.clusterSize;
    const length = bytes.byteLength;
    let runStart = -1;
    for (let at = 0; at < length; ) {
      const next = Math.min(length, at + clusterSize);
      const zero = isZeroRange(bytes, at, next);
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        await this.#write(offset + runStart, bytes.subarray(runStart, at), copy);
        runStart = -1;
      }
      at = next;
    }
    if (runStart >= 0) await this.#write(offset + runStart, bytes.subarray(runStart), copy);
  }

  async #write(offset: number, bytes: Buffer, copy: boolean): Promise<void> {
    if (copy) await this.#writes.append(offset, bytes);
    else this.#writes.write(offset, bytes);
    this.bytesWritten += bytes.byteLength;
  }
}
