/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), in two forms:
 *
 * - `crc32c(data, seed?)` is the standard CRC-32C (initial ~0, final inversion) that
 *   iSCSI, LevelDB/RocksDB block trailers and most libraries compute: check value
 *   `crc32c("123456789") === 0xE3069283`.
 * - `crc32cUpdate(state, data, start?, end?)` is the raw register update with no
 *   pre- or post-inversion, as libext2fs's `ext2fs_crc32c_le(seed, buf, len)`:
 *   ext4's metadata_csum chains it from ~0 (or a seed) and stores the register
 *   without inverting it.
 *
 * Table-driven, slice-by-8: Node has no built-in CRC-32C (zlib.crc32 is the IEEE
 * polynomial, and only from Node 22.2), and the one maintained pure-JS package
 * would add a dependency for 40 lines we test against checksums mke2fs writes.
 */
const TABLES = buildTables();

function buildTables(): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const first = tables[0] as Uint32Array;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    first[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = first[n] as number;
    for (let t = 1; t < 8; t++) {
      c = (first[c & 0xff] as number) ^ (c >>> 8);
      (tables[t] as Uint32Array)[n] = c >>> 0;
    }
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/**
 * The raw CRC-32C register continued over `data[start, end)` from `state`, with no
 * pre- or post-inversion (libext2fs's `ext2fs_crc32c_le`), so calls chain:
 * `crc32cUpdate(crc32cUpdate(s, a), b)` is the update over `a` then `b`. The
 * standard CRC-32C of `data` is `~crc32cUpdate(0xffffffff, data) >>> 0`, which is
 * what `crc32c` returns.
 */
export function crc32cUpdate(
  state: number,
  data: Uint8Array,
  start = 0,
  end = data.length,
): number {
  let c = state >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a =
      (c ^
        ((data[i] as number) |
          ((data[i + 1] as number) << 8) |
          ((data[i + 2] as number) << 16) |
          ((data[i + 3] as number) << 24))) >>>
      0;
    c =
      (T7[a & 0xff] as number) ^
      (T6[(a >>> 8) & 0xff] as number) ^
      (T5[(a >>> 16) & 0xff] as number) ^
      (T4[a >>> 24] as number) ^
      (T3[data[i + 4] as number] as number) ^
      (T2[data[i + 5] as number] as number) ^
      (T1[data[i + 6] as number] as number) ^
      (T0[data[i + 7] as number] as number);
  }
  for (; i < end; i++) c = (T0[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

/**
 * The standard CRC-32C of `data` (`"123456789"` → `0xE3069283`). `seed` is an
 * earlier result to continue from, as `zlib.crc32(data, value)` takes one:
 * `crc32c(b, crc32c(a))` equals the CRC-32C of `a` followed by `b`; 0 (the
 * default) starts afresh.
 */
export function crc32c(data: Uint8Array, seed = 0): number {
  return ~crc32cUpdate(~seed >>> 0, data) >>> 0;
}

/** LevelDB/RocksDB `kMaskDelta`: added after the rotation so a CRC of CRCs stays useful. */
const MASK_DELTA = 0xa282ead8;

/**
 * LevelDB's `crc32c::Mask`: rotate right by 15 bits, add 0xa282ead8 (mod 2^32).
 * LevelDB and RocksDB store masked CRCs in block trailers and log records because
 * computing the CRC of a string that contains embedded CRCs is problematic.
 */
export function maskCrc32c(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/** LevelDB's `crc32c::Unmask`: the inverse of `maskCrc32c`. */
export function unmaskCrc32c(masked: number): number {
  const rotated = (masked - MASK_DELTA) >>> 0;
  return ((rotated >>> 17) | (rotated << 15)) >>> 0;
}
