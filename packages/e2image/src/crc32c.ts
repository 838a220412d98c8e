/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as libext2fs computes it:
 * `ext2fs_crc32c_le(seed, buf, len)` with no final inversion, so results chain.
 *
 * A table-driven, slice-by-8 implementation: Node has no built-in CRC-32C
 * (zlib.crc32 is the IEEE polynomial, and only from Node 22.2), and the one
 * maintained pure-JS package would add a dependency for 40 lines we can test
 * against the checksums mke2fs writes.
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

/** Continues a CRC-32C over `data[start, end)` from `crc` (libext2fs convention: no pre/post xor). */
export function crc32cUpdate(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc >>> 0;
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

const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

/** CRC-32C continued over a little-endian 32-bit value (inode numbers, generations). */
export function crc32cU32(crc: number, value: number): number {
  scratchView.setUint32(0, value >>> 0, true);
  return crc32cUpdate(crc, scratch, 0, 4);
}

/** CRC-32C continued over a little-endian 64-bit value (block numbers). */
export function crc32cU64(crc: number, value: number): number {
  scratchView.setUint32(0, value % 2 ** 32, true);
  scratchView.setUint32(4, Math.floor(value / 2 ** 32), true);
  return crc32cUpdate(crc, scratch, 0, 8);
}

/** The standard CRC-32C of `data` (initial ~0, final inversion), e.g. "123456789" -> 0xE3069283. */
export function crc32c(data: Uint8Array): number {
  return ~crc32cUpdate(0xffffffff, data) >>> 0;
}
