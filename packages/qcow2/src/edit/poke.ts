import { assertOffset, BlockIoError, FileDevice } from '@x/blockio';
import { MetadataWriter } from '../repair/metadata-writer.js';
import { UndoLogWriter, undoLogPath } from '../undo/undo-log.js';
import { requireQcow2Magic } from './require-qcow2.js';

export interface PokeOptions {
  /** Byte offset in the image file. */
  offset: number;
  /** Value written big-endian. */
  value: bigint;
  /** Bytes written: 1, 2, 4 or 8 (default 8). */
  width?: 1 | 2 | 4 | 8 | undefined;
  dryRun?: boolean | undefined;
  /** Undo log path (default `<image>.qcow2-undo`); false for none. */
  undoLog?: string | false | undefined;
}

export interface PokeResult {
  image: string;
  offset: number;
  width: number;
  /** The bytes there before and after, hex. */
  before: string;
  after: string;
  dryRun: boolean;
  undoLog: string | undefined;
}

/**
 * Overwrites `width` bytes at `offset` with `value` (big-endian), saving the
 * old bytes to the undo log first: for hand repairs of single table entries
 * (qcow2-dump's `-m edit`). Arguments it cannot honour are the caller's
 * mistake: INVALID_ARGUMENT for a bad width; OUT_OF_RANGE for a negative or
 * fractional offset (as assertOffset), a value wider than `width` or bytes
 * past the end of the file.
 */
export async function pokeImage(path: string, options: PokeOptions): Promise<PokeResult> {
  const width = options.width ?? 8;
  // Bad arguments are the caller's mistake, not the image's: the argument codes,
  // as everywhere else, never the codes that describe the image.
  if (![1, 2, 4, 8].includes(width)) {
    throw new BlockIoError('INVALID_ARGUMENT', `width must be 1, 2, 4 or 8 bytes, not ${width}`, {
      path,
    });
  }
  assertOffset(options.offset, 'offset', { path });
  if (options.value < 0n || options.value >= 1n << BigInt(width * 8)) {
    throw new BlockIoError(
      'OUT_OF_RANGE',
      `value ${options.value < 0n ? options.value : `0x${options.value.toString(16)}`} does not fit ${width} bytes`,
      { path, offset: options.offset },
    );
  }
  const dryRun = options.dryRun === true;
  const file = await FileDevice.open(path, { writable: !dryRun });
  try {
    await requireQcow2Magic(file);
    if (options.offset + width > file.size) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `offset ${options.offset} + ${width} bytes is outside the ${file.size}-byte image`,
        { path, offset: options.offset },
      );
    }
    const before = await file.read(options.offset, width);
    const data = Buffer.alloc(8);
    data.writeBigUInt64BE(options.value);
    const bytes = data.subarray(8 - width);
    const logPath = options.undoLog === false ? undefined : (options.undoLog ?? undoLogPath(path));
    const writer = new MetadataWriter(
      file,
      logPath === undefined
        ? undefined
        : () => UndoLogWriter.begin(logPath, file.size, `poke ${width} bytes at ${options.offset}`),
      dryRun,
    );
    await writer.queue(options.offset, bytes, 'poke');
    await writer.sync();
    await writer.log?.finish(file.size);
    return {
      image: path,
      offset: options.offset,
      width,
      before: `0x${before.toString('hex')}`,
      after: `0x${bytes.toString('hex')}`,
      dryRun,
      undoLog: writer.log?.path,
    };
  } finally {
    await file.close();
  }
}
