import {
  type BlockDevice,
  type ByteRange,
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
 * blocks (`ranges`, relative to the filesystem start) from `sourceOffset` to
 * `destinationOffset` in place. Moving right goes from the end backwards and
 * moving left from the start forwards, one chunk at a time, so no byte is
 * overwritten before it has been read. It deliberately takes no AbortSignal:
 * stopping half way leaves neither copy whole (e2image, too, refuses the first
 * Ctrl-C here).
 */
export async function moveFilesystem(
  device: BlockDevice,
  ranges: readonly ByteRange[],
  sourceOffset: number,
  destinationOffset: number,
  options: MoveOptions = {},
): Promise<MoveResult> {
  const chunkSize = options.chunkSize ?? 1 << 20;
  const total = ranges.reduce((sum, range) => sum + range.length, 0);
  const progress = new ProgressTracker('move', total, options.onProgress);
  const buffer = Buffer.allocUnsafe(chunkSize);
  const chunks: ByteRange[] = [];
  for (const range of ranges) {
    for (let at = range.offset; at < range.offset + range.length; at += chunkSize) {
      chunks.push({ offset: at, length: Math.min(chunkSize, range.offset + range.length - at) });
    }
  }
  if (destinationOffset > sourceOffset) chunks.reverse();
  for (const chunk of chunks) {
    const view = buffer.subarray(0, chunk.length);
    await device.read(sourceOffset + chunk.offset, view);
    await device.write(destinationOffset + chunk.offset, view);
    progress.advance(chunk.length);
  }
  await device.flush();
  progress.finish();
  return { bytesMoved: total };
}
