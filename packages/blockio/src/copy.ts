import { type BlockDevice, type ByteRange, deviceExtents, type Extent } from './block-device.js';
import { forEachConcurrent } from './concurrency.js';
import { BlockIoError, throwIfAborted } from './errors.js';
import type { LongRunningOptions } from './progress/progress-event.js';
import { ProgressTracker } from './progress/progress-tracker.js';
import { assertOffset, checkedAdd } from './safe-number.js';
import { isAllZero } from './zero-detect.js';

export interface CopyOptions extends LongRunningOptions {
  /** Skip unallocated and all-zero blocks instead of writing zeros. Default true. */
  sparse?: boolean;
  /**
   * The target reads as zeros wherever we do not write (a new or truncated file).
   * Default: what the target says (`knownZeroed`), else false.
   */
  targetIsZeroed?: boolean;
  /** Bytes per read request. Default 1 MiB. */
  blockSize?: number;
  /** Granularity of zero detection inside data. Default 4 KiB. */
  zeroGranularity?: number;
  /** Read requests in flight. Default 4. */
  concurrency?: number;
  /** Copy only these ranges (ascending, non-overlapping). Default: the whole source. */
  ranges?: Iterable<ByteRange>;
  /** Progress phase name. Default "copy". */
  phase?: string;
}

export interface CopyResult {
  /** Bytes the copy covered (the source size, or the total of `ranges`). */
  bytesTotal: number;
  /** Bytes read from the source. */
  bytesRead: number;
  /** Bytes written to the target (data, not counting skipped zeros). */
  bytesWritten: number;
  /** Bytes skipped or zeroed because they were unallocated or all zero. */
  bytesZero: number;
}

interface Chunk {
  offset: number;
  length: number;
  kind: Extent['kind'];
}

/**
 * Copies `source` to `target` at the same offsets: sparse-aware, in bounded memory
 * (`concurrency` buffers of `blockSize`), cancellable, with progress.
 */
export async function copy(
  source: BlockDevice,
  target: BlockDevice,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const sparse = options.sparse ?? true;
  const targetIsZeroed = options.targetIsZeroed ?? isKnownZeroed(target);
  const blockSize = options.blockSize ?? 1 << 20;
  const granularity = Math.min(options.zeroGranularity ?? 4096, blockSize);
  const concurrency = options.concurrency ?? 4;
  checkTuning(blockSize, granularity, concurrency);
  const ranges = [...(options.ranges ?? [{ offset: 0, length: source.size }])];
  checkRanges(ranges, source);
  if (target.readOnly) {
    throw new BlockIoError('READ_ONLY', 'the copy target is open read-only', { path: target.name });
  }
  const end = ranges.reduce((max, range) => Math.max(max, range.offset + range.length), 0);
  if (end > target.size && !target.zeroExtends) {
    throw new BlockIoError(
      'OUT_OF_RANGE',
      `the target is ${target.size} bytes, too small for a copy ending at ${end}`,
      { path: target.name },
    );
  }

  const bytesTotal = ranges.reduce((sum, range) => sum + range.length, 0);
  const progress = new ProgressTracker(options.phase ?? 'copy', bytesTotal, options.onProgress);
  const result: CopyResult = { bytesTotal, bytesRead: 0, bytesWritten: 0, bytesZero: 0 };
  const buffers: Buffer[] = [];

  const copyChunk = async (chunk: Chunk, slot: number) => {
    if (chunk.kind !== 'data') {
      // Not sparse: every byte is written, so the target ends up fully allocated.
      if (!sparse) await target.writeZeroes(chunk.offset, chunk.length);
      else if (!targetIsZeroed) await target.discard(chunk.offset, chunk.length);
      result.bytesZero += chunk.length;
      progress.advance(chunk.length);
      return;
    }
    buffers[slot] ??= Buffer.allocUnsafe(blockSize);
    const buffer = (buffers[slot] as Buffer).subarray(0, chunk.length);
    await source.read(chunk.offset, buffer);
    result.bytesRead += chunk.length;
    if (!sparse) {
      await target.write(chunk.offset, buffer);
      result.bytesWritten += chunk.length;
    } else {
      await writeNonZeroRuns(target, chunk.offset, buffer, granularity, targetIsZeroed, result);
    }
    progress.advance(chunk.length);
  };

  await forEachConcurrent(
    chunksOf(source, ranges, blockSize, !sparse || !targetIsZeroed, options.signal),
    concurrency,
    copyChunk,
    options.signal,
  );
  throwIfAborted(options.signal, target.name);
  // Holes skipped at the end would leave a growing target short of its full length.
  if (target.size < end) await target.writeZeroes(target.size, end - target.size);
  progress.finish();
  return result;
}

/** Writes the non-zero runs of `buffer`; zero runs are skipped (or zeroed when needed). */
async function writeNonZeroRuns(
  target: BlockDevice,
  offset: number,
  buffer: Buffer,
  granularity: number,
  targetIsZeroed: boolean,
  result: CopyResult,
): Promise<void> {
  let runStart = 0;
  let runIsZero: boolean | undefined;
  const flushRun = async (runEnd: number) => {
    if (runEnd <= runStart || runIsZero === undefined) return;
    const length = runEnd - runStart;
    if (runIsZero) {
      if (!targetIsZeroed) await target.discard(offset + runStart, length);
      result.bytesZero += length;
    } else {
      await target.write(offset + runStart, buffer.subarray(runStart, runEnd));
      result.bytesWritten += length;
    }
  };
  // Blocks are aligned to the granularity in device offsets, so holes line up
  // with the target's own blocks.
  let position = 0;
  while (position < buffer.byteLength) {
    const next = Math.min(
      buffer.byteLength,
      position + granularity - ((offset + position) % granularity),
    );
    const zero = isAllZero(buffer.subarray(position, next));
    if (zero !== runIsZero) {
      await flushRun(position);
      runStart = position;
      runIsZero = zero;
    }
    position = next;
  }
  await flushRun(buffer.byteLength);
}

/**
 * Source extents of every range, cut at block boundaries. Holes are cut too when
 * they will be written (so progress and cancellation stay responsive); otherwise
 * a hole of any size is one chunk that costs nothing.
 */
async function* chunksOf(
  source: BlockDevice,
  ranges: ByteRange[],
  blockSize: number,
  holesAreWritten: boolean,
  signal: AbortSignal | undefined,
): AsyncIterable<Chunk> {
  for (const range of ranges) {
    for await (const extent of deviceExtents(source, range)) {
      throwIfAborted(signal, source.name);
      if (extent.kind !== 'data' && !holesAreWritten) {
        yield extent;
        continue;
      }
      let position = extent.offset;
      const end = extent.offset + extent.length;
      while (position < end) {
        const next = Math.min(end, position + blockSize - (position % blockSize));
        yield { offset: position, length: next - position, kind: extent.kind };
        position = next;
      }
    }
  }
}

const MAX_BLOCK_SIZE = 64 << 20;
const MAX_CONCURRENCY = 64;

/** Memory is `concurrency × blockSize`: keep both sane. */
function checkTuning(blockSize: number, granularity: number, concurrency: number): void {
  const valid =
    Number.isSafeInteger(blockSize) &&
    blockSize > 0 &&
    blockSize <= MAX_BLOCK_SIZE &&
    Number.isSafeInteger(granularity) &&
    granularity > 0 &&
    Number.isSafeInteger(concurrency) &&
    concurrency > 0 &&
    concurrency <= MAX_CONCURRENCY;
  if (!valid) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `copy needs 0 < blockSize <= ${MAX_BLOCK_SIZE}, zeroGranularity > 0 and 0 < concurrency <= ${MAX_CONCURRENCY} (got ${blockSize}, ${granularity}, ${concurrency})`,
    );
  }
}

function checkRanges(ranges: ByteRange[], source: BlockDevice): void {
  let previousEnd = 0;
  for (const range of ranges) {
    if (range.offset < previousEnd) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        'copy ranges must be ascending and must not overlap',
        { path: source.name, offset: range.offset },
      );
    }
    assertOffset(range.offset, 'copy range offset', { path: source.name });
    assertOffset(range.length, 'copy range length', { path: source.name });
    previousEnd = checkedAdd(range.offset, range.length, 'copy range end');
    if (previousEnd > source.size && !source.zeroExtends) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `copy range ends at ${previousEnd}, beyond the ${source.size}-byte source`,
        { path: source.name, offset: range.offset },
      );
    }
  }
}

function isKnownZeroed(device: BlockDevice): boolean {
  return (device as { knownZeroed?: unknown }).knownZeroed === true;
}
