/**
 * Constants of the QCOW2 format, named as QEMU's docs/interop/qcow2.rst (and
 * block/qcow2.h) name them. Section numbers refer to that document.
 */

/** "QFI\xfb" — Header, byte 0. */
export const QCOW_MAGIC = 0x514649fb;

export const QCOW_VERSION_2 = 2;
export const QCOW_VERSION_3 = 3;

/** Size of the version 2 header; version 3 headers are at least 104 bytes. */
export const QCOW2_V2_HEADER_LENGTH = 72;
export const QCOW2_V3_MIN_HEADER_LENGTH = 104;
/** What QEMU 7.2 writes for version 3 (104 + compression type + padding). */
export const QCOW2_V3_HEADER_LENGTH = 112;

/** Cluster sizes QEMU supports: 512 B (bits 9) to 2 MiB (bits 21). */
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** Extended L2 entries need clusters of at least 16 KiB. */
export const MIN_EXTENDED_L2_CLUSTER_BITS = 14;

/** QEMU's limits (block/qcow2.h): guard allocations a header field controls. */
export const QCOW_MAX_L1_SIZE = 0x2000000; // 32 MiB of L1 table
export const QCOW_MAX_REFTABLE_SIZE = 0x800000; // 8 MiB of refcount table
export const QCOW_MAX_SNAPSHOTS = 65536;
export const QCOW_MAX_SNAPSHOTS_SIZE = 1024 * QCOW_MAX_SNAPSHOTS;
export const QCOW_MAX_SNAPSHOT_EXTRA_DATA = 1024;
export const QCOW2_MAX_BACKING_FILE_SIZE = 1023;
export const QCOW_MAX_REFCOUNT_ORDER = 6;

/** Encryption methods (Header, crypt_method). */
export const QCOW_CRYPT_NONE = 0;
export const QCOW_CRYPT_AES = 1;
export const QCOW_CRYPT_LUKS = 2;

/** Incompatible feature bits (Header, incompatible_features). */
export const QCOW2_INCOMPAT_DIRTY = 1n << 0n;
export const QCOW2_INCOMPAT_CORRUPT = 1n << 1n;
export const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
export const QCOW2_INCOMPAT_COMPRESSION = 1n << 3n;
export const QCOW2_INCOMPAT_EXTL2 = 1n << 4n;
export const QCOW2_INCOMPAT_MASK =
  QCOW2_INCOMPAT_DIRTY |
  QCOW2_INCOMPAT_CORRUPT |
  QCOW2_INCOMPAT_DATA_FILE |
  QCOW2_INCOMPAT_COMPRESSION |
  QCOW2_INCOMPAT_EXTL2;

/** Compatible feature bits. */
export const QCOW2_COMPAT_LAZY_REFCOUNTS = 1n << 0n;

/** Autoclear feature bits. */
export const QCOW2_AUTOCLEAR_BITMAPS = 1n << 0n;
export const QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
export const QCOW2_AUTOCLEAR_MASK = QCOW2_AUTOCLEAR_BITMAPS | QCOW2_AUTOCLEAR_DATA_FILE_RAW;

/** Compression types (Header, compression_type). */
export const QCOW2_COMPRESSION_TYPE_ZLIB = 0;
export const QCOW2_COMPRESSION_TYPE_ZSTD = 1;

/** Header extension types (Header extensions). */
export const QCOW2_EXT_MAGIC_END = 0x00000000;
export const QCOW2_EXT_MAGIC_BACKING_FORMAT = 0xe2792aca;
export const QCOW2_EXT_MAGIC_FEATURE_TABLE = 0x6803f857;
export const QCOW2_EXT_MAGIC_BITMAPS = 0x23852875;
export const QCOW2_EXT_MAGIC_CRYPTO_HEADER = 0x0537be77;
export const QCOW2_EXT_MAGIC_DATA_FILE = 0x44415441;

/**
 * Table entry bits (Cluster mapping). Offsets live in bits 9–55; these masks
 * are applied to the high and low 32-bit halves of an entry separately so hot
 * loops avoid BigInt.
 */
export const QCOW_OFLAG_COPIED = 1n << 63n;
export const QCOW_OFLAG_COMPRESSED = 1n << 62n;
export const QCOW_OFLAG_ZERO = 1n << 0n;
export const L1E_OFFSET_MASK = 0x00fffffffffffe00n;
export const L2E_OFFSET_MASK = 0x00fffffffffffe00n;
export const REFT_OFFSET_MASK = 0xfffffffffffffe00n;
/** Reserved bits of standard entries; set means the entry is corrupt. */
export const L1E_RESERVED_MASK = 0x7f000000000001ffn;
export const L2E_STD_RESERVED_MASK = 0x3f000000000001fen;

/** In the high word: COPIED = bit 31, COMPRESSED = bit 30, offset = bits 0–23. */
export const HI_COPIED = 0x80000000;
export const HI_COMPRESSED = 0x40000000;
export const HI_OFFSET_MASK = 0x00ffffff;
/** In the low word: offset bits 9–31, zero flag bit 0. */
export const LO_OFFSET_MASK = 0xfffffe00;
export const LO_ZERO = 0x1;

/** Compressed cluster descriptors count 512-byte sectors. */
export const QCOW2_COMPRESSED_SECTOR_SIZE = 512;

/** Extended L2: 32 subclusters, bitmap word = allocated (bits 0–31) | zero (bits 32–63). */
export const QCOW_EXTL2_SUBCLUSTERS_PER_CLUSTER = 32;
