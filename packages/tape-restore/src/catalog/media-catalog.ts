import { readFile } from 'node:fs/promises';
import { fromSystemError } from '@x/blockio';
import { TapeRestoreError } from '../errors.js';
import {
  PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_0,
  PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1,
  sameBytes,
} from '../format/magics.js';
import {
  CATALOG_ENTRY_CHUNK,
  CATALOG_ENTRY_CHUNK_ARCHIVE_END,
  CATALOG_ENTRY_CHUNK_ARCHIVE_START,
  CATALOG_ENTRY_LABEL,
  CATALOG_ENTRY_SNAPSHOT,
  CHUNK_DIGEST_SIZE,
  ChunkArchiveEnd,
  ChunkArchiveStart,
  LabelEntry,
  SnapshotEntry,
} from '../format/media-catalog.js';
import { parseSnapshotPath } from '../snapshot-name.js';
import { formatUuid } from '../uuid.js';

/** One chunk archive as the catalog records it. */
export interface CatalogChunkArchive {
  readonly fileNumber: number;
  readonly uuid: string;
  readonly store: string;
  readonly chunkCount: number;
  /** The chunks it holds (hex), in archive order. */
  readonly digests: string[];
}

export interface CatalogSnapshot {
  readonly fileNumber: number;
  readonly uuid: string;
  readonly store: string;
  /** Printed form, `[ns/…/]type/id/time`. */
  readonly snapshot: string;
}

/** What one tape's catalog says is on it (§7). */
export interface MediaCatalog {
  readonly mediaUuid: string;
  readonly mediaSetUuid: string | undefined;
  readonly seqNr: number | undefined;
  readonly chunkArchives: CatalogChunkArchive[];
  readonly snapshots: CatalogSnapshot[];
  /** store -> digest (hex) -> file number. */
  readonly chunks: Map<string, Map<string, number>>;
  /** store -> printed snapshot -> file number. */
  readonly snapshotFiles: Map<string, Map<string, number>>;
}

/**
 * Parses a `<media-uuid>.log` (§7): magic, then records of a type byte plus a padded
 * C struct (and a tail for A and S), with the loading rules PBS applies — labels
 * first, A/S file numbers >= 2 and increasing, C only inside A…E, E repeating its A.
 * `path` names the file in errors, `expectedUuid` is the media uuid from the inventory.
 */
export function parseMediaCatalog(
  bytes: Uint8Array,
  path: string,
  expectedUuid?: string,
): MediaCatalog {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (offset: number, why: string, structure = 'media catalog record') =>
    new TapeRestoreError('BAD_CATALOG', why, { path, offset, structure });
  // The digest -> file map is built on first use: a plan of a million-entry catalog
  // needs only the per-archive counts, not a million hex strings and Map entries.
  let chunkMap: Map<string, Map<string, number>> | undefined;
  const catalog: MediaCatalog = {
    mediaUuid: expectedUuid ?? '',
    mediaSetUuid: undefined,
    seqNr: undefined,
    chunkArchives: [],
    snapshots: [],
    get chunks() {
      if (!chunkMap) {
        chunkMap = new Map();
        for (const archive of catalog.chunkArchives) {
          let storeChunks = chunkMap.get(archive.store);
          if (!storeChunks) {
            storeChunks = new Map();
            chunkMap.set(archive.store, storeChunks);
          }
          for (const digest of archive.digests) storeChunks.set(digest, archive.fileNumber);
        }
      }
      return chunkMap;
    },
    snapshotFiles: new Map(),
  };
  // §7: an empty file has no entries (the magic is written on the first commit).
  if (buffer.byteLength === 0) return catalog;
  if (buffer.byteLength < 8)
    throw fail(0, 'the catalog is shorter than its magic', 'media catalog magic');
  const magic = buffer.subarray(0, 8);
  if (sameBytes(magic, PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_0)) {
    throw new TapeRestoreError('UNSUPPORTED', 'media catalog v1.0 is not supported', {
      path,
      offset: 0,
      structure: 'media catalog magic',
    });
  }
  if (!sameBytes(magic, PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1)) {
    throw new TapeRestoreError('BAD_MAGIC', 'not a media catalog (wrong magic)', {
      path,
      offset: 0,
      structure: 'media catalog magic',
    });
  }
  const state = catalog as { -readonly [K in keyof MediaCatalog]: MediaCatalog[K] };
  let labels = 0;
  let lastFile = -1;
  let open:
    | {
        fileNumber: number;
        uuid: string;
        store: string;
        /** Offset of the first digest; C records follow each other 33 bytes apart. */
        first: number;
        count: number;
        offset: number;
      }
    | undefined;
  let offset = 8;
  const need = (size: number, what: string) => {
    if (offset + size > buffer.byteLength)
      throw fail(offset, `the catalog ends inside a ${what} record`);
  };
  const fileNumberOf = (value: bigint, at: number) => {
    if (value > BigInt(Number.MAX_SAFE_INTEGER))
      throw fail(at, `file number ${value} is out of range`);
    return Number(value);
  };
  while (offset < buffer.byteLength) {
    const type = buffer[offset] as number;
    const recordOffset = offset;
    offset++;
    if (type === CATALOG_ENTRY_CHUNK) {
      need(CHUNK_DIGEST_SIZE, 'chunk');
      if (!open)
        throw fail(recordOffset, 'a chunk record outside a chunk archive (no open A record)');
      if (open.count === 0) open.first = offset;
      open.count++;
      offset += CHUNK_DIGEST_SIZE;
      continue;
    }
    if (type === CATALOG_ENTRY_LABEL) {
      need(LabelEntry.size, 'label');
      const entry = LabelEntry.decode(buffer, offset);
      offset += LabelEntry.size;
      const fileNumber = fileNumberOf(entry.fileNumber, recordOffset);
      const uuid = formatUuid(entry.uuid);
      if (labels === 0) {
        if (fileNumber !== 0 || entry.seqNr !== 0n)
          throw fail(
            recordOffset,
            `the first label record must be file 0, seq_nr 0; found file ${fileNumber}, seq_nr ${entry.seqNr}`,
          );
        if (expectedUuid !== undefined && uuid !== expectedUuid)
          throw fail(recordOffset, `the catalog is for media ${uuid}, not ${expectedUuid}`);
        state.mediaUuid = uuid;
      } else if (labels === 1) {
        if (fileNumber !== 1)
          throw fail(recordOffset, `the second label record must be file 1, found ${fileNumber}`);
        state.mediaSetUuid = uuid;
        state.seqNr = fileNumberOf(entry.seqNr, recordOffset);
      } else {
        throw fail(recordOffset, 'more than two label records');
      }
      labels++;
      lastFile = fileNumber;
      continue;
    }
    if (open && type !== CATALOG_ENTRY_CHUNK_ARCHIVE_END) {
      throw fail(
        recordOffset,
        `record '${String.fromCharCode(type)}' inside the chunk archive of file ${open.fileNumber} (no E record)`,
      );
    }
    if (type === CATALOG_ENTRY_CHUNK_ARCHIVE_START) {
      need(ChunkArchiveStart.size, 'chunk archive start');
      const entry = ChunkArchiveStart.decode(buffer, offset);
      offset += ChunkArchiveStart.size;
      need(entry.storeNameLen, 'chunk archive start');
      const store = buffer.toString('utf8', offset, offset + entry.storeNameLen);
      offset += entry.storeNameLen;
      const fileNumber = fileNumberOf(entry.fileNumber, recordOffset);
      if (fileNumber < 2 || fileNumber <= lastFile) {
        throw fail(
          recordOffset,
          `chunk archive at file ${fileNumber} after file ${lastFile} (must be >= 2 and increasing)`,
        );
      }
      lastFile = fileNumber;
      open = {
        fileNumber,
        uuid: formatUuid(entry.uuid),
        store,
        first: 0,
        count: 0,
        offset: recordOffset,
      };
      continue;
    }
    if (type === CATALOG_ENTRY_CHUNK_ARCHIVE_END) {
      need(ChunkArchiveEnd.size, 'chunk archive end');
      const entry = ChunkArchiveEnd.decode(buffer, offset);
      offset += ChunkArchiveEnd.size;
      const fileNumber = fileNumberOf(entry.fileNumber, recordOffset);
      if (!open)
        throw fail(recordOffset, `an E record for file ${fileNumber} without its A record`);
      if (fileNumber !== open.fileNumber || formatUuid(entry.uuid) !== open.uuid) {
        throw fail(
          recordOffset,
          `the E record (file ${fileNumber}) does not match the A record (file ${open.fileNumber})`,
        );
      }
      state.chunkArchives.push(
        lazyArchive(buffer, fileNumber, open.uuid, open.store, open.first, open.count),
      );
      open = undefined;
      continue;
    }
    if (type === CATALOG_ENTRY_SNAPSHOT) {
      need(SnapshotEntry.size, 'snapshot');
      const entry = SnapshotEntry.decode(buffer, offset);
      offset += SnapshotEntry.size;
      need(entry.storeNameLen + 1 + entry.nameLen, 'snapshot');
      const store = buffer.toString('utf8', offset, offset + entry.storeNameLen);
      offset += entry.storeNameLen;
      if (buffer[offset] !== 0x3a)
        throw fail(recordOffset, 'the snapshot record has no ":" between store and snapshot');
      offset++;
      const snapshot = buffer.toString('utf8', offset, offset + entry.nameLen);
      offset += entry.nameLen;
      const fileNumber = fileNumberOf(entry.fileNumber, recordOffset);
      if (fileNumber < 2 || fileNumber <= lastFile) {
        throw fail(
          recordOffset,
          `snapshot at file ${fileNumber} after file ${lastFile} (must be >= 2 and increasing)`,
        );
      }
      try {
        parseSnapshotPath(snapshot);
      } catch (error) {
        throw fail(
          recordOffset,
          `the snapshot record names "${snapshot}": ${(error as Error).message}`,
        );
      }
      lastFile = fileNumber;
      state.snapshots.push({ fileNumber, uuid: formatUuid(entry.uuid), store, snapshot });
      let storeSnapshots = state.snapshotFiles.get(store);
      if (!storeSnapshots) {
        storeSnapshots = new Map();
        state.snapshotFiles.set(store, storeSnapshots);
      }
      storeSnapshots.set(snapshot, fileNumber);
      continue;
    }
    throw fail(recordOffset, `unknown record type 0x${type.toString(16).padStart(2, '0')}`);
  }
  // A chunk archive still open at the end is one the writer had not finished: PBS
  // commits A…E together, so its chunks are not in the catalog (left out here too).
  return catalog;
}

/** A chunk archive whose digests (hex) are made from the catalog bytes on first use. */
function lazyArchive(
  buffer: Buffer,
  fileNumber: number,
  uuid: string,
  store: string,
  first: number,
  count: number,
): CatalogChunkArchive {
  let digests: string[] | undefined;
  return {
    fileNumber,
    uuid,
    store,
    chunkCount: count,
    get digests() {
      if (!digests) {
        digests = new Array<string>(count);
        // A…E holds only C records: each is the type byte and 32 digest bytes.
        for (let i = 0, at = first; i < count; i++, at += 1 + CHUNK_DIGEST_SIZE) {
          digests[i] = buffer.toString('hex', at, at + CHUNK_DIGEST_SIZE);
        }
      }
      return digests;
    },
  };
}

/** Reads and parses `<statusDir>/<uuid>.log`; ENOENT becomes MEDIA_SET_INCOMPLETE. */
export async function loadMediaCatalog(
  path: string,
  mediaUuid: string,
  label?: string,
): Promise<MediaCatalog> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TapeRestoreError(
        'MEDIA_SET_INCOMPLETE',
        `there is no catalog for media ${mediaUuid}${label ? ` (${label})` : ''}`,
        { path, tape: label, structure: 'media catalog' },
      );
    }
    throw fromSystemError(error, 'read the media catalog', { path });
  }
  return parseMediaCatalog(bytes, path, mediaUuid);
}
