import { defineStruct, u8, u16le, u32le, u64le } from '@x/blockio';

/**
 * The fixed-size headers of the LevelDB/RocksDB formats. The variable-length parts
 * (varints, length-prefixed keys) are read with `Cursor`.
 */

/** log_format.h: the header of every physical log record (WAL and MANIFEST). */
export const LOG_RECORD_HEADER = defineStruct('log record header', 7, [
  {
    name: 'checksum',
    offset: 0,
    type: u32le,
    doc: 'masked CRC-32C of type (+ log number) + payload',
  },
  { name: 'length', offset: 4, type: u16le, doc: 'payload bytes in this fragment' },
  { name: 'type', offset: 6, type: u8, doc: 'RecordType: FULL, FIRST, MIDDLE, LAST …' },
] as const);

/** RocksDB recyclable records: the header plus the number of the log that wrote it. */
export const RECYCLABLE_LOG_RECORD_HEADER = defineStruct('recyclable log record header', 11, [
  { name: 'checksum', offset: 0, type: u32le },
  { name: 'length', offset: 4, type: u16le },
  { name: 'type', offset: 6, type: u8 },
  { name: 'logNumber', offset: 7, type: u32le, doc: 'low 32 bits of the writing log number' },
] as const);

/** write_batch.cc: rep_ starts with the first sequence number and the record count. */
export const WRITE_BATCH_HEADER = defineStruct('write batch header', 12, [
  { name: 'sequence', offset: 0, type: u64le },
  { name: 'count', offset: 8, type: u32le },
] as const);

/** format.h: every block is followed by its compression type and checksum. */
export const BLOCK_TRAILER = defineStruct('block trailer', 5, [
  { name: 'compressionType', offset: 0, type: u8 },
  { name: 'checksum', offset: 1, type: u32le },
] as const);

/** The last 12 bytes of a format_version ≥ 1 footer (the magic alone in a legacy one). */
export const FOOTER_TAIL = defineStruct('table footer tail', 12, [
  { name: 'formatVersion', offset: 0, type: u32le, doc: 'only in new-format footers' },
  { name: 'magic', offset: 4, type: u64le, doc: 'table magic number' },
] as const);
