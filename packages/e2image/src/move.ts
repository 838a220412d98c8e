import {
  assertOffset,
  type BlockDevice,
  BlockIoError,
  type ByteRange,
  checkedAdd,
  ExtentSet,
  type LongRunningOptions,
  ProgressTracker,
} from '@x/blockio';

export interface MoveOptions extends Pick<LongRunningOptions, 'onProgress'> {
  /** Bytes per read/write. Default 1 MiB. */
  chunkSize?: number | undefined;
}

export interface MoveResult {
  bytesMoved: number;
}

/**
 * e2image -ra -o SRC -O DST on one file or device: moves the filesystem's
 * blocks (`ranges`, relative to the filesystem start, in any order, overlapping
 * or not) from `sourceOffset` to `destinationOffset` in place.
 *
 * The ranges are sorted and merged first: the copy order below is only safe for
 * ascending, disjoint ranges (an unordered or overlapping list would let a chunk
 * overwrite source bytes a later chunk still has to read). Every range is checked
 * against the device before the first write (OUT_OF_RANGE / UNSAFE_INTEGER), so a
 * bad argument never leaves the filesystem half moved.
 *
 * Moving right goes from the end backwards and moving left from the start
 * forwards, one chunk at a time (read whole, then written), so no byte is
 * overwritten before it has been read. It deliberately takes no AbortSignal:
 * stopping half way leaves neither copy whole (e2image, too, refuses the first
 * Ctrl-C here).
 */
export async function moveFilesystem(
  device: BlockDevice,
  ranges: Iterable<ByteRange>,
  sourceOffset: number,
  destinationOffset: number,
  options: MoveOptions = {},
): Promise<MoveResult> {
  const context = { path: device.name };
  assertOffset(sourceOffset, 'source offset', context);
  assertOffset(destinationOffset, 'destination offset', context);
  const chunkSize = options.chunkSize ?? 1 << 20;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `chunk size must be a positive integer, got ${chunkSize}`,
      context,
    );
  }
  const merged = normaliseRanges(device, ranges);
  const total = merged.totalBytes;
  if (!merged.isEmpty) {
    const end = merged.end;
    checkBounds(device, checkedAdd(sourceOffset, end, 'move source end'), 'source', end);
    if (!device.zeroExtends) {
      checkBounds(
        device,
        checkedAdd(destinationOffset, end, 'move destination end'),
        'destination',
        end,
      );
    }
  }

  const progress = new ProgressTracker('move', total, options.onProgress);
  const buffer = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(total, 1)));
  const backwards = destinationOffset > sourceOffset;
  for (const chunk of chunksInCopyOrder(merged, buffer.length, backwards)) {
    const view = buffer.subarray(0, chunk.length);
    await device.read(sourceOffset + chunk.offset, view);
    await device.write(destinationOffset + chunk.offset, view);
    progress.advance(chunk.length);
  }
  await device.flush();
  progress.finish();
  return { bytesMoved: total };
}

/** The ranges sorted and merged, each one checked first so the error names it. */
function normaliseRanges(device: BlockDevice, ranges: Iterable<ByteRange>): ExtentSet {
  const set = new ExtentSet();
  let index = 0;
  for (const range of ranges) {
    const structure = `move range ${index} (${range.offset}+${range.length})`;
    assertOffset(range.offset, 'range offset', { path: device.name, structure });
    assertOffset(range.length, 'range length', { path: device.name, structure });
    checkedAdd(range.offset, range.length, `end of ${structure}`);
    set.add(range.offset, range.length);
    index++;
  }
  return set;
}

function checkBounds(device: BlockDevice, end: number, side: string, filesystemEnd: number): void {
  if (end > device.size) {
    throw new BlockIoError(
      'OUT_OF_RANGE',
      `the ${side} of the move ends at byte ${end} (filesystem byte ${filesystemEnd}), past the ${device.size}-byte device; nothing was moved`,
      { path: device.name, offset: end, structure: `move ${side}` },
    );
  }
}

/**
 * Chunks of at most `chunkSize` bytes of ascending, disjoint ranges: ascending,
 * or all descending when the data moves right, so that every chunk is read
 * before any chunk that could overwrite it is written.
 */
function* chunksInCopyOrder(
  ranges: ExtentSet,
  chunkSize: number,
  backwards: boolean,
): Generator<ByteRange> {
  const list = [...ranges];
  if (!backwards) {
    for (const range of list) {
      const end = range.offset + range.length;
      for (let at = range.offset; at < end; at += chunkSize) {
        yield { offset: at, length: Math.min(chunkSize, end - at) };
      }
    }
    return;
  }
  for (let i = list.length - 1; i >= 0; i--) {
    const range = list[i] as ByteRange;
    for (let end = range.offset + range.length; end > range.offset; end -= chunkSize) {
      const start = Math.max(range.offset, end - chunkSize);
      yield { offset: start, length: end - start };
    }
  }
}
