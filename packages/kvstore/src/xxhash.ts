/**
 * xxHash32 and xxHash64 (Yann Collet's reference algorithm, seed 0 by default): the
 * checksums RocksDB tables use when BlockBasedTableOptions::checksum is kxxHash or
 * kxxHash64. No dependency: 80 lines, checked against tables RocksDB writes.
 */
const P32_1 = 0x9e3779b1;
const P32_2 = 0x85ebca77;
const P32_3 = 0xc2b2ae3d;
const P32_4 = 0x27d4eb2f;
const P32_5 = 0x165667b1;

const rotl32 = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
const read32 = (b: Uint8Array, p: number): number =>
  ((b[p] as number) |
    ((b[p + 1] as number) << 8) |
    ((b[p + 2] as number) << 16) |
    ((b[p + 3] as number) << 24)) >>>
  0;

const round32 = (acc: number, input: number): number =>
  Math.imul(rotl32((acc + Math.imul(input, P32_2)) >>> 0, 13), P32_1) >>> 0;

export function xxHash32(data: Uint8Array, seed = 0): number {
  const length = data.length;
  let p = 0;
  let h: number;
  if (length >= 16) {
    let v1 = (seed + P32_1 + P32_2) >>> 0;
    let v2 = (seed + P32_2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P32_1) >>> 0;
    for (; p + 16 <= length; p += 16) {
      v1 = round32(v1, read32(data, p));
      v2 = round32(v2, read32(data, p + 4));
      v3 = round32(v3, read32(data, p + 8));
      v4 = round32(v4, read32(data, p + 12));
    }
    h = (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) >>> 0;
  } else {
    h = (seed + P32_5) >>> 0;
  }
  h = (h + length) >>> 0;
  for (; p + 4 <= length; p += 4) {
    h = Math.imul(rotl32((h + Math.imul(read32(data, p), P32_3)) >>> 0, 17), P32_4) >>> 0;
  }
  for (; p < length; p++) {
    h = Math.imul(rotl32((h + Math.imul(data[p] as number, P32_5)) >>> 0, 11), P32_1) >>> 0;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P32_2) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, P32_3) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

const M64 = (1n << 64n) - 1n;
const P64_1 = 0x9e3779b185ebca87n;
const P64_2 = 0xc2b2ae3d27d4eb4fn;
const P64_3 = 0x165667b19e3779f9n;
const P64_4 = 0x85ebca77c2b2ae63n;
const P64_5 = 0x27d4eb2f165667c5n;

const rotl64 = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M64;
const read64 = (b: Uint8Array, p: number): bigint =>
  (BigInt(read32(b, p + 4)) << 32n) | BigInt(read32(b, p));
const round64 = (acc: bigint, input: bigint): bigint =>
  (rotl64((acc + input * P64_2) & M64, 31n) * P64_1) & M64;
const mergeRound64 = (acc: bigint, value: bigint): bigint =>
  (((acc ^ round64(0n, value)) * P64_1 + P64_4) & M64) as bigint;

export function xxHash64(data: Uint8Array, seed = 0n): bigint {
  const length = data.length;
  let p = 0;
  let h: bigint;
  if (length >= 32) {
    let v1 = (seed + P64_1 + P64_2) & M64;
    let v2 = (seed + P64_2) & M64;
    let v3 = seed & M64;
    let v4 = (seed - P64_1) & M64;
    for (; p + 32 <= length; p += 32) {
      v1 = round64(v1, read64(data, p));
      v2 = round64(v2, read64(data, p + 8));
      v3 = round64(v3, read64(data, p + 16));
      v4 = round64(v4, read64(data, p + 24));
    }
    h = (rotl64(v1, 1n) + rotl64(v2, 7n) + rotl64(v3, 12n) + rotl64(v4, 18n)) & M64;
    h = mergeRound64(h, v1);
    h = mergeRound64(h, v2);
    h = mergeRound64(h, v3);
    h = mergeRound64(h, v4);
  } else {
    h = (seed + P64_5) & M64;
  }
  h = (h + BigInt(length)) & M64;
  for (; p + 8 <= length; p += 8) {
    h ^= round64(0n, read64(data, p));
    h = (rotl64(h, 27n) * P64_1 + P64_4) & M64;
  }
  if (p + 4 <= length) {
    h ^= (BigInt(read32(data, p)) * P64_1) & M64;
    h = (rotl64(h, 23n) * P64_2 + P64_3) & M64;
    p += 4;
  }
  for (; p < length; p++) {
    h ^= (BigInt(data[p] as number) * P64_5) & M64;
    h = (rotl64(h, 11n) * P64_1) & M64;
  }
  h ^= h >> 33n;
  h = (h * P64_2) & M64;
  h ^= h >> 29n;
  h = (h * P64_3) & M64;
  h ^= h >> 32n;
  return h;
}
