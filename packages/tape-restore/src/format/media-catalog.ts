import { bytes, defineStruct, u8, u16le, u64le } from '@x/blockio';

/**
 * §7 Per-media catalog records: a type byte, then a repr(C) struct written with its
 * natural padding (not packed), then for A and S a variable tail.
 */
export const CATALOG_ENTRY_LABEL = 0x4c; // 'L'
export const CATALOG_ENTRY_CHUNK_ARCHIVE_START = 0x41; // 'A'
export const CATALOG_ENTRY_CHUNK = 0x43; // 'C'
export const CATALOG_ENTRY_CHUNK_ARCHIVE_END = 0x45; // 'E'
export const CATALOG_ENTRY_SNAPSHOT = 0x53; // 'S'

export const LabelEntry = defineStruct('catalog LabelEntry', 32, [
  { name: 'fileNumber', offset: 0, type: u64le },
  {
    name: 'uuid',
    offset: 8,
    type: bytes(16),
    doc: 'media uuid (file 0) or media-set uuid (file 1)',
  },
  { name: 'seqNr', offset: 24, type: u64le },
] as const);

export const ChunkArchiveStart = defineStruct('catalog ChunkArchiveStart', 32, [
  { name: 'fileNumber', offset: 0, type: u64le },
  { name: 'uuid', offset: 8, type: bytes(16), doc: 'content uuid of the tape file' },
  { name: 'storeNameLen', offset: 24, type: u8, doc: '7 bytes padding follow' },
] as const);

/** The `C` record: a raw 32-byte digest. */
export const CHUNK_DIGEST_SIZE = 32;

export const ChunkArchiveEnd = defineStruct('catalog ChunkArchiveEnd', 24, [
  { name: 'fileNumber', offset: 0, type: u64le },
  { name: 'uuid', offset: 8, type: bytes(16) },
] as const);

export const SnapshotEntry = defineStruct('catalog SnapshotEntry', 32, [
  { name: 'fileNumber', offset: 0, type: u64le },
  { name: 'uuid', offset: 8, type: bytes(16) },
  { name: 'storeNameLen', offset: 24, type: u8, doc: '1 byte padding follows' },
  { name: 'nameLen', offset: 26, type: u16le, doc: '4 bytes padding follow' },
] as const);
