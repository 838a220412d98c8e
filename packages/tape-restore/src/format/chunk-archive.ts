import { bytes, defineStruct, u64le } from '@x/blockio';

/** §3 Chunk archive: the header before every chunk's DataBlob. */
export const ChunkArchiveEntryHeader = defineStruct('chunk archive entry header', 48, [
  { name: 'magic', offset: 0, type: bytes(8), doc: 'CHUNK_ARCHIVE_ENTRY_MAGIC_1_0' },
  { name: 'digest', offset: 8, type: bytes(32), doc: 'chunk-store name of the chunk' },
  { name: 'size', offset: 40, type: u64le, doc: 'size of the DataBlob bytes that follow' },
] as const);

/**
 * §3 (11.3): the writer emits a chunk's blob in slices of this size, checking for
 * logical end of media after each.
 */
export const CHUNK_ARCHIVE_SLICE_SIZE = 262144;
