import { allocateAligned } from './aligned-buffer.js';
import { BlockCursor, type Chunk, extentsOfRanges } from './block-cursor.js';
import type { BlockDevice, ByteRange } from './block-device.js';
import { BlockIoError, throwIfAborted } from './errors.js';
import { eventLoopYielder } from './event-loop-yielder.js';
import type { LongRunningOptions } from './progress/progress-event.js';
import { ProgressTracker } from './progress/progress-tracker.js';
import { assertOffset, checkedAdd } from './safe-number.js';
import { hasZeroCandidate, isZeroRange } from './zero-detect.js';

export interface CopyOptions extends LongRunningOptions {
  /** Skip unallocated and all-zero blocks instead of writing zeros. Default true. */
  sparse?: boolean;
  /**
   * The target reads as zeros wherever we do not write (a new or truncated file).
   * Default: what the target says (`knownZeroed`), else false.
   */
  targetIsZeroed?: boolean;
  /**
   * Bytes per read request. Default 256 KiB: measured fastest for file copies, as
   * the buffer stays in the CPU cache between the read and the write (1 MiB was
   * 1.5-3x slower in system time on the benchmark machine).
   */
  blockSize?: number;
  /** Granularity of zero detection inside data. Default 4 KiB. */
  zeroGranularity?: number;
  /** Blocks in flight. Default: the smaller `queueDepth` of the two devices (else 4). */
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

/**
 * Copies `source` to `target` at the same offsets: sparse-aware, in bounded memory
 * (`concurrency` buffers of `blockSize`), cancellable, with progress.
 *
 * The per-block path is kept lean on purpose: a sparse copy of 2 GiB is 8192 blocks
 * of 256 KiB, and the JavaScript run per block (mostly before the JIT has warmed
 * up) showed up as a fifth of the whole copy when it went through async generators.
 */
export async function copy(
  source: BlockDevice,
  target: BlockDevice,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const sparse = options.sparse ?? true;
  const targetIsZeroed = options.targetIsZeroed ?? isKnownZeroed(target);
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const granularity = Math.min(options.zeroGranularity ?? 4096, blockSize);
  const concurrency =
    options.concurrency ?? Math.min(source.queueDepth ?? 4, target.queueDepth ?? 4);
  checkBlockTuning('copy', blockSize, granularity, concurrency);
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
  // Holes are cut into blocks only when they are written (progress and cancellation
  // stay responsive); otherwise a hole of any size is one chunk that costs nothing.
  const cursor = new BlockCursor(
    extentsOfRanges(source, ranges),
    blockSize,
    !sparse || !targetIsZeroed,
  );
  const maybeYield = eventLoopYielder();
  const signal = options.signal;

  const skipOrZero = async (chunk: Chunk) => {
    // Not sparse: every byte is written, so the target ends up fully allocated.
    if (!sparse) await target.writeZeroes(chunk.offset, chunk.length);
    else if (!targetIsZeroed) await target.discard(chunk.offset, chunk.length);
    result.bytesZero += chunk.length;
  };

  const blockWrite: BlockWriteSettings = { sparse, granularity, targetIsZeroed };
  const copyData = async (chunk: Chunk, buffer: Buffer) => {
    await source.read(chunk.offset, buffer);
    result.bytesRead += chunk.length;
    await writeDataBlock(target, chunk.offset, buffer, blockWrite, result);
  };

  let failure: { error: unknown } | undefined;
  const lane = async () => {
    let buffer: Buffer | undefined;
    try {
      while (failure === undefined) {
        throwIfAborted(signal, source.name);
        const turn = maybeYield();
        if (turn !== undefined) await turn;
        const chunk = cursor.take() ?? (await cursor.refill());
        if (chunk === undefined) return;
        if (chunk.kind === 'data') {
          // Page-aligned: the kernel copies into and out of it much faster (see allocateAligned).
          buffer ??= allocateAligned(blockSize);
          const view = chunk.length === blockSize ? buffer : buffer.subarray(0, chunk.length);
          await copyData(chunk, view);
        } else {
          await skipOrZero(chunk);
        }
        progress.advance(chunk.length);
      }
    } catch (error) {
      failure ??= { error };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  if (failure !== undefined) {
    await cursor.close();
    throw failure.error;
  }
  throwIfAborted(signal, target.name);
  // Holes skipped at the end would leave a growing target short of its full length.
  if (target.size < end) await target.writeZeroes(target.size, end - target.size);
  progress.finish();
  return result;
}

/** How a block of data read from a source is written (shared by copy and writeFromStream). */
export interface BlockWriteSettings {
  /** Leave all-zero runs of `granularity` unwritten. */
  readonly sparse: boolean;
  readonly granularity: number;
  /** The target reads as zeros where not written; otherwise skipped runs are discarded. */
  readonly targetIsZeroed: boolean;
}

/**
 * Writes one block at `offset`: whole when it cannot hold a zero run (the common case,
 * decided by sampling), else run by run, skipping the zero runs. Counts into `result`.
 */
export async function writeDataBlock(
  target: BlockDevice,
  offset: number,
  buffer: Buffer,
  settings: BlockWriteSettings,
  result: CopyResult,
): Promise<void> {
  const { sparse, granularity, targetIsZeroed } = settings;
  if (!sparse || !hasZeroCandidate(buffer, offset, granularity)) {
    await target.write(offset, buffer);
    result.bytesWritten += buffer.byteLength;
  } else {
    await writeNonZeroRuns(target, offset, buffer, granularity, targetIsZeroed, result);
  }
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
    const zero = isZeroRange(buffer, position, next);
    if (zero !== runIsZero) {
      await flushRun(position);
      runStart = position;
      runIsZero = zero;
    }
    position = next;
  }
  await flushRun(buffer.byteLength);
}

/** Bytes per block by default (see CopyOptions.blockSize); writeFromStream uses it too. */
export const DEFAULT_BLOCK_SIZE = 256 << 10;
const MAX_BLOCK_SIZE = 64 << 20;
const MAX_CONCURRENCY = 64;

/**
 * Memory is `concurrency × blockSize`: keep both sane. `what` names the caller in the
 * message ("copy", "writeFromStream"); without `concurrency` only the block is checked.
 */
export function checkBlockTuning(
  what: string,
  blockSize: number,
  granularity: number,
  concurrency?: number,
  path?: string,
): void {
  const valid =
    Number.isSafeInteger(blockSize) &&
    blockSize > 0 &&
    blockSize <= MAX_BLOCK_SIZE &&
    Number.isSafeInteger(granularity) &&
    granularity > 0 &&
    (concurrency === undefined ||
      (Number.isSafeInteger(concurrency) && concurrency > 0 && concurrency <= MAX_CONCURRENCY));
  if (!valid) {
    const needs =
      concurrency === undefined
        ? `0 < blockSize <= ${MAX_BLOCK_SIZE} and zeroGranularity > 0 (got ${blockSize}, ${granularity})`
        : `0 < blockSize <= ${MAX_BLOCK_SIZE}, zeroGranularity > 0 and 0 < concurrency <= ${MAX_CONCURRENCY} (got ${blockSize}, ${granularity}, ${concurrency})`;
    throw new BlockIoError('INVALID_ARGUMENT', `${what} needs ${needs}`, { path });
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

export function isKnownZeroed(device: BlockDevice): boolean {
  return (device as { knownZeroed?: unknown }).knownZeroed === true;
}
