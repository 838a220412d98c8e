import { PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1 } from '../format/magics.js';
import {
  CATALOG_ENTRY_CHUNK,
  CATALOG_ENTRY_CHUNK_ARCHIVE_END,
  CATALOG_ENTRY_CHUNK_ARCHIVE_START,
  CATALOG_ENTRY_LABEL,
  CATALOG_ENTRY_SNAPSHOT,
  ChunkArchiveEnd,
  ChunkArchiveStart,
  LabelEntry,
  SnapshotEntry,
} from '../format/media-catalog.js';
import { parseUuid } from '../uuid.js';

/**
 * Builds a `<media-uuid>.log` (§7) as the full restore rebuilds it: the magic, the two
 * label records, then A/C…/E and S records in file order, padded C structs.
 */
export class MediaCatalogBuilder {
  readonly #parts: Buffer[] = [Buffer.from(PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1)];

  constructor(mediaUuid: string, mediaSetUuid: string, seqNr: number) {
    this.#record(
      CATALOG_ENTRY_LABEL,
      LabelEntry.encode({ fileNumber: 0n, uuid: parseUuid(mediaUuid), seqNr: 0n }),
    );
    this.#record(
      CATALOG_ENTRY_LABEL,
      LabelEntry.encode({ fileNumber: 1n, uuid: parseUuid(mediaSetUuid), seqNr: BigInt(seqNr) }),
    );
  }

  chunkArchive(
    fileNumber: number,
    contentUuid: string,
    store: string,
    digests: Iterable<string>,
  ): void {
    const name = Buffer.from(store, 'utf8');
    this.#record(
      CATALOG_ENTRY_CHUNK_ARCHIVE_START,
      ChunkArchiveStart.encode({
        fileNumber: BigInt(fileNumber),
        uuid: parseUuid(contentUuid),
        storeNameLen: name.byteLength,
      }),
      name,
    );
    for (const digest of digests) this.#record(CATALOG_ENTRY_CHUNK, Buffer.from(digest, 'hex'));
    this.#record(
      CATALOG_ENTRY_CHUNK_ARCHIVE_END,
      ChunkArchiveEnd.encode({ fileNumber: BigInt(fileNumber), uuid: parseUuid(contentUuid) }),
    );
  }

  snapshot(fileNumber: number, contentUuid: string, store: string, snapshot: string): void {
    const storeName = Buffer.from(store, 'utf8');
    const name = Buffer.from(snapshot, 'utf8');
    this.#record(
      CATALOG_ENTRY_SNAPSHOT,
      SnapshotEntry.encode({
        fileNumber: BigInt(fileNumber),
        uuid: parseUuid(contentUuid),
        storeNameLen: storeName.byteLength,
        nameLen: name.byteLength,
      }),
      Buffer.concat([storeName, Buffer.from(':'), name]),
    );
  }

  bytes(): Buffer {
    return Buffer.concat(this.#parts);
  }

  #record(type: number, struct: Uint8Array, tail?: Uint8Array): void {
    this.#parts.push(
      Buffer.from([type]),
      Buffer.from(struct.buffer, struct.byteOffset, struct.byteLength),
    );
    if (tail) this.#parts.push(Buffer.from(tail));
  }
}
