import { TapeRestoreError, type TapeRestoreErrorOptions } from './errors.js';
import {
  DynamicIndexEntry,
  DynamicIndexHeader,
  FIXED_INDEX_ENTRY_SIZE,
  FixedIndexHeader,
  INDEX_HEADER_SIZE,
} from './format/index-file.js';
import {
  DYNAMIC_SIZED_CHUNK_INDEX_1_0,
  FIXED_SIZED_CHUNK_INDEX_1_0,
  sameBytes,
} from './format/magics.js';

export interface ChunkIndex {
  readonly kind: 'fidx' | 'didx';
  /** Total data size the index describes. */
  readonly size: bigint;
  /** Chunk digests as lowercase hex, in index order (may repeat). */
  readonly digests: string[];
}

/** Decodes a `.fidx` or `.didx` file (§5) into its digests, checking its shape. */
export function parseChunkIndex(
  bytes: Uint8Array,
  kind: 'fidx' | 'didx',
  where: TapeRestoreErrorOptions = {},
): ChunkIndex {
  const fail = (why: string) =>
    new TapeRestoreError('BAD_INDEX', why, { structure: `${kind} index`, ...where });
  if (bytes.byteLength < INDEX_HEADER_SIZE) {
    throw fail(
      `an index needs a ${INDEX_HEADER_SIZE}-byte header, the file has ${bytes.byteLength} bytes`,
    );
  }
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const digests: string[] = [];
  if (kind === 'fidx') {
    const header = FixedIndexHeader.decode(bytes);
    if (!sameBytes(header.magic, FIXED_SIZED_CHUNK_INDEX_1_0)) {
      throw new TapeRestoreError('BAD_MAGIC', 'not a fixed index (.fidx) magic', {
        structure: 'fidx index header',
        offset: 0,
        ...where,
      });
    }
    if (header.chunkSize === 0n) throw fail('chunk_size is 0');
    const count = (header.size + header.chunkSize - 1n) / header.chunkSize;
    const expected = BigInt(INDEX_HEADER_SIZE) + count * BigInt(FIXED_INDEX_ENTRY_SIZE);
    if (expected !== BigInt(bytes.byteLength)) {
      throw fail(
        `size ${header.size} / chunk_size ${header.chunkSize} needs a file of ${expected} bytes, found ${bytes.byteLength}`,
      );
    }
    for (let offset = INDEX_HEADER_SIZE; offset < bytes.byteLength; offset += 32) {
      digests.push(buffer.toString('hex', offset, offset + 32));
    }
    return { kind, size: header.size, digests };
  }
  const header = DynamicIndexHeader.decode(bytes);
  if (!sameBytes(header.magic, DYNAMIC_SIZED_CHUNK_INDEX_1_0)) {
    throw new TapeRestoreError('BAD_MAGIC', 'not a dynamic index (.didx) magic', {
      structure: 'didx index header',
      offset: 0,
      ...where,
    });
  }
  if ((bytes.byteLength - INDEX_HEADER_SIZE) % DynamicIndexEntry.size !== 0) {
    throw fail(`${bytes.byteLength - INDEX_HEADER_SIZE} entry bytes are not a multiple of 40`);
  }
  let end = 0n;
  for (let offset = INDEX_HEADER_SIZE; offset < bytes.byteLength; offset += 40) {
    const next = buffer.readBigUInt64LE(offset);
    if (next < end)
      throw fail(`entry at ${offset} ends at ${next}, before the previous one (${end})`);
    end = next;
    digests.push(buffer.toString('hex', offset + 8, offset + 40));
  }
  return { kind, size: end, digests };
}
