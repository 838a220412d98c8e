import { bytes, defineStruct, reserved, u64le } from '@x/blockio';
import { i64le } from './fields.js';

/** §5: both index kinds have a 4096-byte header. */
export const INDEX_HEADER_SIZE = 4096;

/** §5 Fixed index `.fidx` header. */
export const FixedIndexHeader = defineStruct('fixed index header', INDEX_HEADER_SIZE, [
  { name: 'magic', offset: 0, type: bytes(8), doc: 'FIXED_SIZED_CHUNK_INDEX_1_0' },
  { name: 'uuid', offset: 8, type: bytes(16) },
  { name: 'ctime', offset: 24, type: i64le },
  { name: 'indexCsum', offset: 32, type: bytes(32), doc: 'SHA-256 over all digests' },
  { name: 'size', offset: 64, type: u64le, doc: 'total image bytes' },
  { name: 'chunkSize', offset: 72, type: u64le },
  { name: 'reserved', offset: 80, type: reserved(4016) },
] as const);

/** §5 Dynamic index `.didx` header. */
export const DynamicIndexHeader = defineStruct('dynamic index header', INDEX_HEADER_SIZE, [
  { name: 'magic', offset: 0, type: bytes(8), doc: 'DYNAMIC_SIZED_CHUNK_INDEX_1_0' },
  { name: 'uuid', offset: 8, type: bytes(16) },
  { name: 'ctime', offset: 24, type: i64le },
  { name: 'indexCsum', offset: 32, type: bytes(32), doc: 'SHA-256 over (end || digest) entries' },
  { name: 'reserved', offset: 64, type: reserved(4032) },
] as const);

/** §5 Dynamic index entry. */
export const DynamicIndexEntry = defineStruct('dynamic index entry', 40, [
  { name: 'endOffset', offset: 0, type: u64le },
  { name: 'digest', offset: 8, type: bytes(32) },
] as const);

export const FIXED_INDEX_ENTRY_SIZE = 32;
