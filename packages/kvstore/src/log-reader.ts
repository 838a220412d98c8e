import type { FileHandle } from 'node:fs/promises';
import { crc32cUpdate, throwIfAborted, unmaskCrc32c } from '@x/blockio';
import { kvError, type WarningListener } from './errors.js';
import { readExact } from './file-read.js';
import {
  kBlockSize,
  kFirstType,
  kFullType,
  kHeaderSize,
  kLastType,
  kMiddleType,
  kRecyclableFullType,
  kRecyclableHeaderSize,
  kRecyclableLastType,
  kRecyclableUserDefinedTimestampSizeType,
  kSetCompressionType,
  kUserDefinedTimestampSizeType,
  kZeroType,
} from './format/constants.js';
import { LOG_RECORD_HEADER, RECYCLABLE_LOG_RECORD_HEADER } from './format/structs.js';

/** One logical record: the payload of a FULL record or of FIRST, MIDDLE…, LAST joined. */
export interface LogRecord {
  /** File offset of the header of the record's first fragment. */
  readonly offset: number;
  readonly data: Buffer;
}

export interface LogReaderOptions {
  readonly path: string;
  /** "log" (a WAL) or "manifest": the structure named in errors is "<kind> record". */
  readonly kind: 'log' | 'manifest';
  /** The number of this log (from its name): recycled records of an older log end it. */
  readonly logNumber?: number | undefined;
  readonly onWarning?: WarningListener | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Blocks read per I/O: a whole number of 32 KiB log blocks. */
const BLOCKS_PER_READ = 32;

/**
 * The logical records of a LevelDB/RocksDB log file (the WAL and the MANIFEST share
 * this framing), read in 32 KiB blocks and streamed.
 *
 * Tolerated as LevelDB's log::Reader does, with a warning: a record cut off by the
 * end of the file (the writer died mid-write), including a fragmented record whose
 * LAST fragment was never written. Zero-filled block tails (preallocation, padding)
 * are skipped silently. Everything else is an error: a checksum that does not match,
 * a length that runs past its block inside the file, fragments out of order, an
 * unknown record type.
 */
export async function* readLogRecords(
  handle: FileHandle,
  size: number,
  options: LogReaderOptions,
): AsyncGenerator<LogRecord> {
  const { path, kind } = options;
  const structure = `${kind} record`;
  const warnTruncated = (offset: number, detail: string) =>
    options.onWarning?.({
      code: 'TRUNCATED_LOG_RECORD',
      message: `the last ${kind} record ${detail}: dropped, as LevelDB/RocksDB recovery does`,
      path,
      offset,
    });

  /**
   * RocksDB recycles log files (recycle_log_file_num): once a record carrying this
   * log's number has been read, bytes that do not frame a record are the file's old
   * contents, which end the log as they end RocksDB's recovery, not an error.
   */
  let recycled = false;
  let fragments: Buffer[] = [];
  let fragmentStart = -1;
  let chunkStart = 0;
  let chunk: Buffer = Buffer.alloc(0);
  for (let blockStart = 0; blockStart < size; blockStart += kBlockSize) {
    throwIfAborted(options.signal, path);
    if (blockStart >= chunkStart + chunk.length) {
      chunkStart = blockStart;
      chunk = await readExact(
        handle,
        path,
        blockStart,
        Math.min(kBlockSize * BLOCKS_PER_READ, size - blockStart),
        `${kind} block`,
      );
    }
    const blockEnd = Math.min(blockStart + kBlockSize, size);
    const lastBlock = blockEnd === size;
    let position = blockStart;
    while (position < blockEnd) {
      const local = position - chunkStart;
      const left = blockEnd - position;
      const where = { path, offset: position, structure };
      if (left < kHeaderSize) {
        // A block trailer too short for a header is zero padding; at the end of the
        // file it may also be the start of a header the writer never finished.
        if (lastBlock && !isZero(chunk, local, local + left)) {
          warnTruncated(position, `header is cut off by the end of the file`);
          return;
        }
        break;
      }
      let type = chunk[local + 6] as number;
      const recyclable = type >= kRecyclableFullType && type <= kRecyclableLastType;
      const recyclableMeta = type === kRecyclableUserDefinedTimestampSizeType;
      const headerSize = recyclable || recyclableMeta ? kRecyclableHeaderSize : kHeaderSize;
      if (left < headerSize) {
        if (lastBlock) {
          warnTruncated(position, 'header is cut off by the end of the file');
          return;
        }
        if (recycled) return;
        throw kvError(
          'BAD_LOG_RECORD',
          `a ${headerSize}-byte header does not fit in the ${left} bytes left in its block`,
          where,
        );
      }
      const header = (
        recyclable || recyclableMeta ? RECYCLABLE_LOG_RECORD_HEADER : LOG_RECORD_HEADER
      ).decode(chunk, local);
      const length = header.length;
      if (type === kZeroType && length === 0) {
        // Preallocated or padded space: LevelDB and RocksDB skip the rest of the block.
        break;
      }
      if (headerSize + length > left) {
        if (lastBlock) {
          warnTruncated(
            position,
            `needs ${headerSize + length} bytes but the file ends after ${left}`,
          );
          return;
        }
        if (recycled) return;
        throw kvError(
          'BAD_LOG_RECORD',
          `record length ${length} runs past the end of its 32 KiB block (${left - headerSize} bytes left)`,
          where,
        );
      }
      const payloadStart = local + headerSize;
      const payloadEnd = payloadStart + length;
      // The CRC covers the type byte (and the log number of recyclable records) and the payload.
      const expected = unmaskCrc32c(header.checksum);
      const actual = ~crc32cUpdate(0xffffffff, chunk, local + 6, payloadEnd) >>> 0;
      if (expected !== actual) {
        if (recycled) return;
        throw kvError(
          'BAD_CHECKSUM',
          `${kind} record checksum mismatch: stored 0x${expected.toString(16)} (unmasked), computed 0x${actual.toString(16)}`,
          where,
        );
      }
      if (recyclable && options.logNumber !== undefined) {
        const own = (header as { logNumber?: number }).logNumber;
        if (own !== options.logNumber % 2 ** 32) {
          // Records an older log left in this recycled file: the live records end here.
          return;
        }
        recycled = true;
      }
      const payload = chunk.subarray(payloadStart, payloadEnd);
      if (recyclable) type -= kRecyclableFullType - kFullType;
      switch (type) {
        case kFullType:
          if (fragments.length > 0) {
            if (recycled) return;
            throw kvError(
              'BAD_LOG_RECORD',
              'a FULL record inside a fragmented record (no LAST fragment before it)',
              where,
            );
          }
          yield { offset: position, data: Buffer.from(payload) };
          break;
        case kFirstType:
          if (fragments.length > 0) {
            if (recycled) return;
            throw kvError(
              'BAD_LOG_RECORD',
              'a FIRST fragment inside a fragmented record (no LAST fragment before it)',
              where,
            );
          }
          fragments = [Buffer.from(payload)];
          fragmentStart = position;
          break;
        case kMiddleType:
          if (fragments.length === 0) {
            if (recycled) return;
            throw kvError('BAD_LOG_RECORD', 'a MIDDLE fragment without a FIRST one', where);
          }
          fragments.push(Buffer.from(payload));
          break;
        case kLastType:
          if (fragments.length === 0) {
            if (recycled) return;
            throw kvError('BAD_LOG_RECORD', 'a LAST fragment without a FIRST one', where);
          }
          fragments.push(Buffer.from(payload));
          yield { offset: fragmentStart, data: Buffer.concat(fragments) };
          fragments = [];
          break;
        case kSetCompressionType:
          // CompressionTypeRecord: the WAL's compression as a fixed32; 0 means none.
          if (payload.some((byte) => byte !== 0)) {
            if (recycled) return;
            throw kvError(
              'UNSUPPORTED',
              'the log is compressed (RocksDB wal_compression): not supported',
              where,
            );
          }
          break;
        case kUserDefinedTimestampSizeType:
        case kRecyclableUserDefinedTimestampSizeType:
          // Timestamp sizes of column families; the default column family reads without them.
          break;
        default:
          if (recycled) return;
          throw kvError('BAD_LOG_RECORD', `unknown record type ${type}`, where);
      }
      position += headerSize + length;
    }
  }
  if (fragments.length > 0) warnTruncated(fragmentStart, 'has no LAST fragment');
}

function isZero(buffer: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buffer[i] !== 0) return false;
  return true;
}
