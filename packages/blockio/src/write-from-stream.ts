import type { BlockDevice } from './block-device.js';
import {
  type BlockWriteSettings,
  type CopyResult,
  checkBlockTuning,
  DEFAULT_BLOCK_SIZE,
  isKnownZeroed,
  writeDataBlock,
} from './copy.js';
import { BlockIoError, throwIfAborted } from './errors.js';
import { eventLoopYielder } from './event-loop-yielder.js';
import type { LongRunningOptions } from './progress/progress-event.js';
import { ProgressTracker } from './progress/progress-tracker.js';
import { assertOffset, checkedAdd } from './safe-number.js';

export interface WriteFromStreamOptions extends LongRunningOptions {
  /** The stream must deliver exactly this many bytes; fewer or more is an error. */
  length?: number | undefined;
  /** Skip all-zero blocks instead of writing them (as copy() does). Default true. */
  sparse?: boolean | undefined;
  /** As in copy(): the target reads as zeros where not written. Default: its `knownZeroed`. */
  targetIsZeroed?: boolean | undefined;
  /** Granularity of zero detection. Default 4 KiB. */
  zeroGranularity?: number | undefined;
  /** Small chunks are gathered into writes of this size. Default 256 KiB, as copy(). */
  blockSize?: number | undefined;
  /** Progress phase name. Default "write". */
  phase?: string | undefined;
}

/** bytesTotal and bytesRead are the bytes the stream delivered. */
export type WriteFromStreamResult = CopyResult;

/**
 * Writes a byte stream (an SSH channel, a decompressor, a backup file's payload) into
 * `target` from `offset` on, in order. Memory stays at one block: chunks smaller than
 * a block are gathered into one, larger ones are written from where they are.
 */
export async function writeFromStream(
  target: BlockDevice,
  offset: number,
  source: AsyncIterable<Uint8Array>,
  options: WriteFromStreamOptions = {},
): Promise<WriteFromStreamResult> {
  const where = { path: target.name };
  assertOffset(offset, 'stream write offset', where);
  const { length, signal } = options;
  const sparse = options.sparse ?? true;
  const targetIsZeroed = options.targetIsZeroed ?? isKnownZeroed(target);
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const granularity = Math.min(options.zeroGranularity ?? 4096, blockSize);
  checkBlockTuning('writeFromStream', blockSize, granularity, undefined, target.name);
  if (target.readOnly) {
    throw new BlockIoError('READ_ONLY', 'the stream target is open read-only', where);
  }
  if (length !== undefined) {
    assertOffset(length, 'stream length', { ...where, offset });
    const end = checkedAdd(offset, length, 'stream end');
    if (end > target.size && !target.zeroExtends) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `the target is ${target.size} bytes, too small for ${length} bytes at offset ${offset}`,
        { ...where, offset },
      );
    }
  }

  const result: WriteFromStreamResult = {
    bytesTotal: 0,
    bytesRead: 0,
    bytesWritten: 0,
    bytesZero: 0,
  };
  // Without a length the total is unknown: 0, which the renderers show without a bar.
  const progress = new ProgressTracker(options.phase ?? 'write', length ?? 0, options.onProgress);
  const maybeYield = eventLoopYielder();
  let position = offset;

  const blockWrite: BlockWriteSettings = { sparse, granularity, targetIsZeroed };
  const writeBlock = async (block: Buffer) => {
    await writeDataBlock(target, position, block, blockWrite, result);
    position += block.byteLength;
    progress.advance(block.byteLength);
  };

  let staging: Buffer | undefined;
  let staged = 0;
  for await (const chunk of source) {
    throwIfAborted(signal, target.name);
    const turn = maybeYield();
    if (turn !== undefined) await turn;
    const bytes = asBuffer(chunk, target.name, offset + result.bytesRead);
    const received = result.bytesRead + bytes.byteLength;
    if (length !== undefined && received > length) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `the stream delivered more than the ${length} bytes expected at offset ${offset}`,
        { ...where, offset: offset + length },
      );
    }
    if (!target.zeroExtends && offset + received > target.size) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `the stream runs past the end of the ${target.size}-byte target (${received} bytes from offset ${offset})`,
        { ...where, offset: target.size },
      );
    }
    result.bytesRead = received;
    let used = 0;
    while (used < bytes.byteLength) {
      if (staged === 0 && bytes.byteLength - used >= blockSize) {
        await writeBlock(bytes.subarray(used, used + blockSize));
        used += blockSize;
        continue;
      }
      staging ??= Buffer.allocUnsafe(blockSize);
      const take = Math.min(blockSize - staged, bytes.byteLength - used);
      staging.set(bytes.subarray(used, used + take), staged);
      staged += take;
      used += take;
      if (staged === blockSize) {
        await writeBlock(staging);
        staged = 0;
      }
    }
  }
  throwIfAborted(signal, target.name);
  if (length !== undefined && result.bytesRead < length) {
    throw new BlockIoError(
      'SHORT_READ',
      `the stream ended after ${result.bytesRead} of the ${length} bytes expected at offset ${offset}`,
      { ...where, offset: offset + result.bytesRead },
    );
  }
  if (staging !== undefined && staged > 0) await writeBlock(staging.subarray(0, staged));
  // Zeros skipped at the end would leave a growing target short of the stream's end.
  if (target.size < position) await target.writeZeroes(target.size, position - target.size);
  result.bytesTotal = result.bytesRead;
  progress.finish();
  return result;
}

function asBuffer(chunk: unknown, name: string, at: number): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  // A stream with an encoding set yields strings: their bytes are not the file's.
  throw new BlockIoError(
    'INVALID_ARGUMENT',
    `the stream yielded a ${typeof chunk}, not bytes (Uint8Array)`,
    { path: name, offset: at },
  );
}
