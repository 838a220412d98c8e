/**
 * Constants of the LevelDB (1.x, doc/log_format.md, doc/table_format.md,
 * db/dbformat.h, db/version_edit.cc) and RocksDB (db/dbformat.h,
 * db/version_edit.h, db/log_format.h, table/format.h) on-disk formats, named as
 * the sources name them.
 */

// --- log format (LevelDB doc/log_format.md, RocksDB db/log_format.h) ---
/** kBlockSize: logs and manifests are written in 32 KiB blocks. */
export const kBlockSize = 32768;
/** kHeaderSize: checksum (4), length (2), type (1). */
export const kHeaderSize = 7;
/** kRecyclableHeaderSize: plus the log number (4) in RocksDB's recyclable records. */
export const kRecyclableHeaderSize = 11;

/** RecordType (log_format.h). */
export const kZeroType = 0;
export const kFullType = 1;
export const kFirstType = 2;
export const kMiddleType = 3;
export const kLastType = 4;
// RocksDB only: records of a recycled log carry the log number.
export const kRecyclableFullType = 5;
export const kRecyclableFirstType = 6;
export const kRecyclableMiddleType = 7;
export const kRecyclableLastType = 8;
/** RocksDB: the WAL's compression (a metadata record before any data). */
export const kSetCompressionType = 9;
/** RocksDB: user-defined timestamp sizes per column family (metadata). */
export const kUserDefinedTimestampSizeType = 10;
export const kRecyclableUserDefinedTimestampSizeType = 11;

// --- internal keys (dbformat.h ValueType) ---
export const kTypeDeletion = 0x0;
export const kTypeValue = 0x1;
export const kTypeMerge = 0x2;
/** Write batch only: a blob of log data, no key. */
export const kTypeLogData = 0x3;
export const kTypeColumnFamilyDeletion = 0x4;
export const kTypeColumnFamilyValue = 0x5;
export const kTypeColumnFamilyMerge = 0x6;
export const kTypeSingleDeletion = 0x7;
export const kTypeColumnFamilySingleDeletion = 0x8;
export const kTypeBeginPrepareXID = 0x9;
export const kTypeEndPrepareXID = 0xa;
export const kTypeCommitXID = 0xb;
export const kTypeRollbackXID = 0xc;
export const kTypeNoop = 0xd;
export const kTypeColumnFamilyRangeDeletion = 0xe;
export const kTypeRangeDeletion = 0xf;
export const kTypeColumnFamilyBlobIndex = 0x10;
export const kTypeBlobIndex = 0x11;
export const kTypeBeginPersistedPrepareXID = 0x12;
export const kTypeBeginUnprepareXID = 0x13;
export const kTypeDeletionWithTimestamp = 0x14;
export const kTypeCommitXIDAndTimestamp = 0x15;
export const kTypeWideColumnEntity = 0x16;
export const kTypeColumnFamilyWideColumnEntity = 0x17;

/** Write batch header: sequence (fixed64) + count (fixed32). */
export const kWriteBatchHeader = 12;

// --- VersionEdit tags (LevelDB version_edit.cc, RocksDB version_edit.h) ---
export const kComparator = 1;
export const kLogNumber = 2;
export const kNextFileNumber = 3;
export const kLastSequence = 4;
/** LevelDB kCompactPointer, RocksDB kCompactCursor: level + internal key. */
export const kCompactPointer = 5;
export const kDeletedFile = 6;
export const kNewFile = 7;
export const kPrevLogNumber = 9;
export const kMinLogNumberToKeep = 10;
export const kNewFile2 = 100;
export const kNewFile3 = 102;
export const kNewFile4 = 103;
export const kColumnFamily = 200;
export const kColumnFamilyAdd = 201;
export const kColumnFamilyDrop = 202;
export const kMaxColumnFamily = 203;
export const kInAtomicGroup = 300;
export const kBlobFileAddition = 400;
export const kBlobFileGarbage = 401;
/** Tags with this bit are forward-compatible: a length-prefixed payload a reader may skip. */
export const kTagSafeIgnoreMask = 1 << 13;

/** NewFile4 custom field tags (version_edit.h NewFileCustomTag). */
export const kTerminate = 1;
export const kPathId = 65;
/** A custom tag with this bit must be understood; without it, it may be skipped. */
export const kCustomTagNonSafeIgnoreMask = 1 << 6;

// --- tables (table/format.h) ---
/** LevelDB's table magic, also RocksDB's legacy block-based table magic (format_version 0). */
export const kLegacyBlockBasedTableMagicNumber = 0xdb4775248b80fb57n;
export const kBlockBasedTableMagicNumber = 0x88e241b785f4cff7n;
export const kLegacyPlainTableMagicNumber = 0x4f3418eb7a8f13b8n;
export const kPlainTableMagicNumber = 0x8242229663bf9564n;
export const kCuckooTableMagicNumber = 0x926789d0c5f17873n;
/** kEncodedLength of a legacy footer: two handles padded to 40, magic 8. */
export const kLegacyFooterLength = 48;
/** Block-based footer of format_version 1..5: checksum type, handles (40), version (4), magic. */
export const kNewVersionsFooterLength = 53;
/** Block trailer: compression type (1) + checksum (4). */
export const kBlockTrailerSize = 5;
/** The two padded block handles of every footer. */
export const kBlockHandlesLength = 40;

/** ChecksumType (RocksDB table.h). */
export const kNoChecksum = 0;
export const kCRC32c = 1;
export const kxxHash = 2;
export const kxxHash64 = 3;
export const kXXH3 = 4;

/** CompressionType: RocksDB values; LevelDB shares 0 and 1 (and uses 2 for zstd). */
export const kNoCompression = 0;
export const kSnappyCompression = 1;
export const kZlibCompression = 2;
export const kBZip2Compression = 3;
export const kLZ4Compression = 4;
export const kLZ4HCCompression = 5;
export const kXpressCompression = 6;
export const kZSTD = 7;
/** LevelDB 1.23+: kZstdCompression. */
export const kLevelDbZstdCompression = 2;

/** BlockBasedTableOptions::IndexType. */
export const kBinarySearch = 0;
export const kHashSearch = 1;
export const kTwoLevelIndexSearch = 2;
export const kBinarySearchWithFirstKey = 3;

/** Meta-index and properties names (table_properties.cc, meta_blocks). */
export const kPropertiesBlockName = 'rocksdb.properties';
export const kPropertiesBlockOldName = 'rocksdb.stats';
export const kRangeDelBlockName = 'rocksdb.range_del';
export const kIndexTypeProperty = 'rocksdb.block.based.table.index.type';
export const kIndexKeyIsUserKeyProperty = 'rocksdb.index.key.is.user.key';
export const kIndexValueIsDeltaEncodedProperty = 'rocksdb.index.value.is.delta.encoded';
export const kComparatorProperty = 'rocksdb.comparator';
export const kGlobalSeqnoProperty = 'rocksdb.external_sst_file.global_seqno';

/** The only comparator this reader orders by. */
export const BYTEWISE_COMPARATORS = new Set(['leveldb.BytewiseComparator']);

/** kMaxSequenceNumber is 2^56 - 1: sequence numbers fit in 56 bits. */
export const kNumLevelsLevelDb = 7;
