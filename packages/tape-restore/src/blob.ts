import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { TapeRestoreError, type TapeRestoreErrorOptions } from './errors.js';
import { DataBlobHeader, EncryptedDataBlobHeader, MAX_BLOB_PLAINTEXT } from './format/blob.js';
import {
  COMPRESSED_BLOB_MAGIC_1_0,
  ENCR_COMPR_BLOB_MAGIC_1_0,
  ENCRYPTED_BLOB_MAGIC_1_0,
  sameBytes,
  UNCOMPRESSED_BLOB_MAGIC_1_0,
} from './format/magics.js';
import { canCompressZstd, zstdCompress, zstdDecompress } from './zstd.js';

export type BlobKind = 'uncompressed' | 'compressed' | 'encrypted' | 'encrypted-compressed';

/** §4: the kind of a DataBlob from its magic, or undefined. */
export function blobKind(blob: Uint8Array): BlobKind | undefined {
  if (blob.byteLength < 8) return undefined;
  const magic = blob.subarray(0, 8);
  if (sameBytes(magic, UNCOMPRESSED_BLOB_MAGIC_1_0)) return 'uncompressed';
  if (sameBytes(magic, COMPRESSED_BLOB_MAGIC_1_0)) return 'compressed';
  if (sameBytes(magic, ENCRYPTED_BLOB_MAGIC_1_0)) return 'encrypted';
  if (sameBytes(magic, ENCR_COMPR_BLOB_MAGIC_1_0)) return 'encrypted-compressed';
  return undefined;
}

const isEncrypted = (kind: BlobKind) => kind === 'encrypted' || kind === 'encrypted-compressed';

/**
 * Checks a DataBlob's magic, length and CRC-32 (§4: over everything after the header,
 * i.e. the data or only the ciphertext). Returns its kind. `where` names it in errors.
 */
export function checkBlobCrc(blob: Uint8Array, where: TapeRestoreErrorOptions): BlobKind {
  const kind = blobKind(blob);
  if (kind === undefined) {
    throw new TapeRestoreError(
      blob.byteLength < 8 ? 'BAD_BLOB' : 'BAD_MAGIC',
      blob.byteLength < 8
        ? `a DataBlob of ${blob.byteLength} bytes is shorter than its magic`
        : `DataBlob magic ${Buffer.from(blob.subarray(0, 8)).toString('hex')} is none of the four blob magics`,
      { structure: 'DataBlob', ...where },
    );
  }
  const header = isEncrypted(kind) ? EncryptedDataBlobHeader : DataBlobHeader;
  if (blob.byteLength < header.size) {
    throw new TapeRestoreError(
      'BAD_BLOB',
      `a ${kind} DataBlob needs at least ${header.size} bytes, this one has ${blob.byteLength}`,
      { structure: 'DataBlob', ...where },
    );
  }
  const stored = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32LE(8);
  const actual = zlib.crc32(blob.subarray(header.size));
  if (stored !== actual) {
    throw new TapeRestoreError(
      'BAD_CRC',
      `DataBlob CRC-32 is 0x${stored.toString(16).padStart(8, '0')} but its ${isEncrypted(kind) ? 'ciphertext' : 'data'} gives 0x${actual.toString(16).padStart(8, '0')}`,
      { structure: 'DataBlob', ...where },
    );
  }
  return kind;
}

/**
 * The plaintext of an unencrypted DataBlob after the CRC check (§4). Encrypted blobs
 * cannot be opened without the key: UNSUPPORTED.
 */
export async function decodeBlob(
  blob: Uint8Array,
  where: TapeRestoreErrorOptions,
): Promise<Buffer> {
  const kind = checkBlobCrc(blob, where);
  if (isEncrypted(kind)) {
    throw new TapeRestoreError('UNSUPPORTED', 'the DataBlob is encrypted', {
      structure: 'DataBlob',
      ...where,
    });
  }
  const data = blob.subarray(DataBlobHeader.size);
  if (kind === 'uncompressed') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  try {
    return await zstdDecompress(data, MAX_BLOB_PLAINTEXT);
  } catch (error) {
    throw new TapeRestoreError(
      'BAD_BLOB',
      `the zstd data of the DataBlob does not decompress: ${(error as Error).message}`,
      { structure: 'DataBlob', ...where, cause: error },
    );
  }
}

/**
 * The restore's check of a chunk read from tape (§4 end, §11.7): CRC, and for an
 * unencrypted chunk the SHA-256 of its plaintext against its digest. Returns the kind.
 */
export async function verifyChunk(
  digest: Uint8Array,
  blob: Uint8Array,
  where: TapeRestoreErrorOptions,
): Promise<BlobKind> {
  const kind = checkBlobCrc(blob, where);
  if (isEncrypted(kind)) return kind;
  const plaintext = await decodeBlob(blob, where);
  const actual = createHash('sha256').update(plaintext).digest();
  if (!sameBytes(actual, digest)) {
    throw new TapeRestoreError(
      'BAD_DIGEST',
      `chunk ${Buffer.from(digest).toString('hex')} has SHA-256 ${actual.toString('hex')}`,
      { structure: 'chunk', ...where },
    );
  }
  return kind;
}

/**
 * A new unencrypted DataBlob for `data` (the re-encoded manifest, §9 phase 1): zstd
 * compressed when this Node can compress and that is strictly smaller, else uncompressed
 * — the choice PBS's encoder makes.
 */
export async function encodeBlob(data: Uint8Array): Promise<Buffer> {
  if (canCompressZstd) {
    const compressed = await zstdCompress(data);
    if (compressed && compressed.byteLength < data.byteLength) {
      return withHeader(COMPRESSED_BLOB_MAGIC_1_0, compressed);
    }
  }
  return withHeader(UNCOMPRESSED_BLOB_MAGIC_1_0, data);
}

function withHeader(magic: Uint8Array, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(DataBlobHeader.size + data.byteLength);
  DataBlobHeader.encode({ magic, crc: zlib.crc32(data) }, out);
  out.set(data, DataBlobHeader.size);
  return out;
}
