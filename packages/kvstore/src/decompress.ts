import * as zlib from 'node:zlib';
import { uncompress as snappyUncompress } from 'snappyjs';
import { Cursor } from './cursor.js';
import { kvError, type Location } from './errors.js';
import {
  kBZip2Compression,
  kLevelDbZstdCompression,
  kLZ4Compression,
  kLZ4HCCompression,
  kNoCompression,
  kSnappyCompression,
  kXpressCompression,
  kZlibCompression,
  kZSTD,
} from './format/constants.js';

/** A decompressed block larger than this is refused (RocksDB blocks are KiB to a few MiB). */
const MAX_BLOCK_SIZE = 1 << 30;

const ROCKSDB_NAMES: Record<number, string> = {
  [kBZip2Compression]: 'bzip2',
  [kLZ4Compression]: 'LZ4',
  [kLZ4HCCompression]: 'LZ4HC',
  [kXpressCompression]: 'Xpress',
};

export interface DecompressContext {
  readonly kind: 'leveldb' | 'rocksdb';
  /** RocksDB format_version ≥ 2 prefixes non-snappy compressed blocks with their size. */
  readonly formatVersion: number;
  readonly where: Location;
}

/**
 * The contents of a block given its trailer's compression type. Snappy through
 * snappyjs (pure JS); zlib (raw deflate, as RocksDB writes it) and zstd through
 * node:zlib where it has them; the other codecs are refused as UNSUPPORTED.
 */
export function decompressBlock(type: number, stored: Buffer, context: DecompressContext): Buffer {
  if (type === kNoCompression) return stored;
  const { where } = context;
  const bad = (codec: string, cause: unknown): never => {
    throw kvError(
      'BAD_COMPRESSION',
      `${codec} data does not decompress: ${(cause as Error)?.message ?? cause}`,
      where,
      cause,
    );
  };
  if (type === kSnappyCompression) {
    let output: Uint8Array;
    try {
      output = snappyUncompress(
        new Uint8Array(stored.buffer, stored.byteOffset, stored.length),
        MAX_BLOCK_SIZE,
      );
    } catch (error) {
      return bad('snappy', error);
    }
    return Buffer.from(output.buffer, output.byteOffset, output.length);
  }
  const zstd = context.kind === 'leveldb' ? type === kLevelDbZstdCompression : type === kZSTD;
  const zlibType = context.kind === 'rocksdb' && type === kZlibCompression;
  if (!zstd && !zlibType) {
    const name = context.kind === 'rocksdb' ? ROCKSDB_NAMES[type] : undefined;
    throw kvError(
      'UNSUPPORTED',
      name === undefined
        ? `unknown block compression type ${type}`
        : `${name}-compressed blocks are not supported (only none, snappy, zlib and zstd)`,
      where,
    );
  }
  let payload = stored;
  let expected: number | undefined;
  if (context.kind === 'rocksdb' && context.formatVersion >= 2) {
    const cursor = new Cursor(stored, where, 'BAD_COMPRESSION');
    expected = cursor.varint32('decompressed size');
    payload = stored.subarray(cursor.position);
  }
  let output: Buffer;
  try {
    if (zlibType) {
      output = zlib.inflateRawSync(payload, { maxOutputLength: MAX_BLOCK_SIZE });
    } else {
      const decompress = (zlib as unknown as { zstdDecompressSync?: (b: Buffer) => Buffer })
        .zstdDecompressSync;
      if (decompress === undefined) {
        throw kvError(
          'UNSUPPORTED',
          `zstd-compressed blocks need Node ≥ 22.15 (node:zlib zstd)`,
          where,
        );
      }
      output = decompress(payload);
    }
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'UNSUPPORTED') throw error;
    return bad(zlibType ? 'zlib' : 'zstd', error);
  }
  if (expected !== undefined && output.length !== expected) {
    throw kvError(
      'BAD_COMPRESSION',
      `block decompresses to ${output.length} bytes, its header says ${expected}`,
      where,
    );
  }
  return output;
}
