import { type BlobKind, checkBlobCrc } from '../blob.js';
import { TapeRestoreError, type TapeRestoreErrorOptions } from '../errors.js';
import { MAX_BLOB_SIZE } from '../format/blob.js';
import { ChunkArchiveEntryHeader } from '../format/chunk-archive.js';
import { PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0, sameBytes } from '../format/magics.js';
import type { TapeReadStats } from '../tape/stats.js';
import type { TapeFileReader } from '../tape/tape-file-reader.js';

export interface ChunkArchiveEntry {
  /** Lowercase hex digest (the chunk-store file name). */
  readonly digest: string;
  readonly digestBytes: Uint8Array;
  /** The raw DataBlob, CRC already checked. */
  readonly blob: Buffer;
  readonly kind: BlobKind;
  /** Where the entry header starts, for messages. */
  readonly where: TapeRestoreErrorOptions;
}

export interface ChunkArchiveEnd {
  /** The last entry was cut short by the end of the stream (§11.1): not an error. */
  cut: boolean;
}

/**
 * Decodes the entries of a chunk archive after its content header (§3): entry header,
 * then the DataBlob. There is no end marker: the end of the block stream ends the
 * archive, and a last entry cut short there is the end too (§11.1; that chunk is
 * written again, whole, on the next tape). Every decoded entry gets its CRC checked,
 * wanted or not (§11.7). Stop iterating to leave the archive early.
 */
export async function* chunkArchiveEntries(
  reader: TapeFileReader,
  stats: TapeReadStats,
  end: ChunkArchiveEnd = { cut: false },
  /** Given, a blob that fails its CRC is reported here and skipped instead of thrown (verify-media). */
  onDamaged?: (error: TapeRestoreError, digest: string) => void,
): AsyncGenerator<ChunkArchiveEntry> {
  const headerBytes = Buffer.allocUnsafe(ChunkArchiveEntryHeader.size);
  for (;;) {
    const where = reader.where('chunk archive entry header');
    const got = await reader.read(headerBytes);
    if (got === 0) return;
    if (got < headerBytes.byteLength) {
      end.cut = true;
      return;
    }
    const header = ChunkArchiveEntryHeader.decode(headerBytes);
    if (!sameBytes(header.magic, PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0)) {
      throw new TapeRestoreError('BAD_MAGIC', 'wrong chunk archive entry magic', where);
    }
    const digest = Buffer.from(header.digest).toString('hex');
    if (header.size > BigInt(MAX_BLOB_SIZE)) {
      throw new TapeRestoreError(
        'BAD_BLOB',
        `chunk ${digest} claims a DataBlob of ${header.size} bytes, over the ${MAX_BLOB_SIZE}-byte limit`,
        where,
      );
    }
    const size = Number(header.size);
    const blob = Buffer.allocUnsafe(size);
    const blobGot = await reader.read(blob);
    if (blobGot < size) {
      end.cut = true;
      return;
    }
    stats.chunkEntriesDecoded++;
    const blobWhere = { ...where, structure: `DataBlob of chunk ${digest}` };
    let kind: BlobKind;
    try {
      kind = checkBlobCrc(blob, blobWhere);
    } catch (error) {
      if (!onDamaged || !(error instanceof TapeRestoreError)) throw error;
      onDamaged(error, digest);
      continue;
    }
    yield { digest, digestBytes: header.digest, blob, kind, where: blobWhere };
  }
}
