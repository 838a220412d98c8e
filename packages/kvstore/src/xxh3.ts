/**
 * XXH3-64 with seed 0 and the default secret (xxHash 0.8 XXH3_64bits): the block
 * checksum RocksDB writes by default since 7.x (ChecksumType kXXH3). Written with
 * bigint for clarity; checked against libxxhash and against tables `ldb` writes.
 */
const M64 = (1n << 64n) - 1n;
const M32 = 0xffffffffn;

const P32_1 = 0x9e3779b1n;
const P32_2 = 0x85ebca77n;
const P32_3 = 0xc2b2ae3dn;
const P64_1 = 0x9e3779b185ebca87n;
const P64_2 = 0xc2b2ae3d27d4eb4fn;
const P64_3 = 0x165667b19e3779f9n;
const P64_4 = 0x85ebca77c2b2ae63n;
const P64_5 = 0x27d4eb2f165667c5n;
const PRIME_MX1 = 0x165667919e3779f9n;
const PRIME_MX2 = 0x9fb21c651e98df25n;

/** XXH3_kSecret. */
const SECRET = Buffer.from(
  'b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f' +
    'cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c' +
    '3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8' +
    'a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364' +
    'eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e' +
    '2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e',
  'hex',
);
const SECRET_SIZE = 192;
const STRIPE_LEN = 64;
const STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE_LEN) / 8;
const BLOCK_LEN = STRIPE_LEN * STRIPES_PER_BLOCK;

const read64 = (b: Uint8Array, p: number): bigint =>
  (BigInt(read32(b, p + 4)) << 32n) | BigInt(read32(b, p));
const read32 = (b: Uint8Array, p: number): number =>
  ((b[p] as number) |
    ((b[p + 1] as number) << 8) |
    ((b[p + 2] as number) << 16) |
    ((b[p + 3] as number) << 24)) >>>
  0;
const secret64 = (p: number): bigint => read64(SECRET, p);
const rotl64 = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M64;
const swap64 = (x: bigint): bigint => {
  let out = 0n;
  for (let i = 0n; i < 64n; i += 8n) out = (out << 8n) | ((x >> i) & 0xffn);
  return out;
};
const mul128Fold64 = (a: bigint, b: bigint): bigint => {
  const product = a * b;
  return (product & M64) ^ (product >> 64n);
};
const xxh64Avalanche = (input: bigint): bigint => {
  let h = input;
  h ^= h >> 33n;
  h = (h * P64_2) & M64;
  h ^= h >> 29n;
  h = (h * P64_3) & M64;
  h ^= h >> 32n;
  return h;
};
const avalanche = (input: bigint): bigint => {
  let h = input ^ (input >> 37n);
  h = (h * PRIME_MX1) & M64;
  return h ^ (h >> 32n);
};
const rrmxmx = (input: bigint, length: number): bigint => {
  let h = input ^ rotl64(input, 49n) ^ rotl64(input, 24n);
  h = (h * PRIME_MX2) & M64;
  h ^= (h >> 35n) + BigInt(length);
  h = (h * PRIME_MX2) & M64;
  return h ^ (h >> 28n);
};
const mix16B = (data: Uint8Array, p: number, secretOffset: number): bigint =>
  mul128Fold64(
    read64(data, p) ^ secret64(secretOffset),
    read64(data, p + 8) ^ secret64(secretOffset + 8),
  );

export function xxh3(data: Uint8Array): bigint {
  const length = data.length;
  if (length <= 16) {
    if (length > 8) {
      const low = read64(data, 0) ^ (secret64(24) ^ secret64(32));
      const high = read64(data, length - 8) ^ (secret64(40) ^ secret64(48));
      return avalanche((BigInt(length) + swap64(low) + high + mul128Fold64(low, high)) & M64);
    }
    if (length >= 4) {
      const input1 = BigInt(read32(data, 0));
      const input2 = BigInt(read32(data, length - 4));
      const bitflip = secret64(8) ^ secret64(16);
      return rrmxmx(((input2 + (input1 << 32n)) & M64) ^ bitflip, length);
    }
    if (length > 0) {
      const combined =
        ((data[0] as number) << 16) |
        ((data[length >> 1] as number) << 24) |
        (data[length - 1] as number) |
        (length << 8);
      const bitflip = BigInt(read32(SECRET, 0) ^ read32(SECRET, 4)) & M32;
      return xxh64Avalanche(BigInt(combined >>> 0) ^ bitflip);
    }
    return xxh64Avalanche(secret64(56) ^ secret64(64));
  }
  if (length <= 128) {
    let acc = (BigInt(length) * P64_1) & M64;
    if (length > 32) {
      if (length > 64) {
        if (length > 96) {
          acc += mix16B(data, 48, 96);
          acc += mix16B(data, length - 64, 112);
        }
        acc += mix16B(data, 32, 64);
        acc += mix16B(data, length - 48, 80);
      }
      acc += mix16B(data, 16, 32);
      acc += mix16B(data, length - 32, 48);
    }
    acc += mix16B(data, 0, 0);
    acc += mix16B(data, length - 16, 16);
    return avalanche(acc & M64);
  }
  if (length <= 240) {
    let acc = (BigInt(length) * P64_1) & M64;
    for (let i = 0; i < 8; i++) acc += mix16B(data, 16 * i, 16 * i);
    acc = avalanche(acc & M64);
    const rounds = Math.floor(length / 16);
    for (let i = 8; i < rounds; i++) acc += mix16B(data, 16 * i, 16 * (i - 8) + 3);
    acc += mix16B(data, length - 16, 136 - 17);
    return avalanche(acc & M64);
  }
  return hashLong(data);
}

/**
 * Inputs over 240 bytes (every table block but the smallest): the stripe loop runs on
 * 32-bit halves, since bigint arithmetic there would dominate a table scan.
 */
function hashLong(data: Uint8Array): bigint {
  const length = data.length;
  // acc[i] as (low, high) 32-bit halves at 2i, 2i + 1.
  const acc = new Uint32Array(16);
  for (const [i, value] of [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1].entries()) {
    acc[2 * i] = Number(value & M32);
    acc[2 * i + 1] = Number(value >> 32n);
  }
  const blocks = Math.floor((length - 1) / BLOCK_LEN);
  for (let n = 0; n < blocks; n++) {
    for (let s = 0; s < STRIPES_PER_BLOCK; s++)
      accumulate512(acc, data, n * BLOCK_LEN + s * STRIPE_LEN, s * 8);
    scramble(acc, SECRET_SIZE - STRIPE_LEN);
  }
  const stripes = Math.floor((length - 1 - BLOCK_LEN * blocks) / STRIPE_LEN);
  for (let s = 0; s < stripes; s++)
    accumulate512(acc, data, blocks * BLOCK_LEN + s * STRIPE_LEN, s * 8);
  accumulate512(acc, data, length - STRIPE_LEN, SECRET_SIZE - STRIPE_LEN - 7);
  const lane = (i: number): bigint =>
    (BigInt(acc[2 * i + 1] as number) << 32n) | BigInt(acc[2 * i] as number);
  let result = (BigInt(length) * P64_1) & M64;
  for (let i = 0; i < 4; i++) {
    result += mul128Fold64(
      lane(2 * i) ^ secret64(11 + 16 * i),
      lane(2 * i + 1) ^ secret64(11 + 16 * i + 8),
    );
  }
  return avalanche(result & M64);
}

const TWO_32 = 2 ** 32;
let productLow = 0;
let productHigh = 0;

/** The 64-bit product of two uint32 into productLow/productHigh (16-bit limbs stay exact in doubles). */
function multiply32(a: number, b: number): void {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const middle = a0 * b1 + a1 * b0;
  const low = a0 * b0 + (middle % 65536) * 65536;
  productLow = low % TWO_32;
  productHigh = (a1 * b1 + Math.floor(middle / 65536) + Math.floor(low / TWO_32)) % TWO_32;
}

function add64(acc: Uint32Array, lane: number, low: number, high: number): void {
  const sum = (acc[2 * lane] as number) + low;
  acc[2 * lane] = sum;
  acc[2 * lane + 1] = (acc[2 * lane + 1] as number) + high + (sum >= TWO_32 ? 1 : 0);
}

function accumulate512(acc: Uint32Array, data: Uint8Array, p: number, secretOffset: number): void {
  for (let i = 0; i < 8; i++) {
    const low = read32(data, p + 8 * i);
    const high = read32(data, p + 8 * i + 4);
    const keyLow = (low ^ read32(SECRET, secretOffset + 8 * i)) >>> 0;
    const keyHigh = (high ^ read32(SECRET, secretOffset + 8 * i + 4)) >>> 0;
    add64(acc, i ^ 1, low, high);
    multiply32(keyLow, keyHigh);
    add64(acc, i, productLow, productHigh);
  }
}

const PRIME32_1 = Number(P32_1);

function scramble(acc: Uint32Array, secretOffset: number): void {
  for (let i = 0; i < 8; i++) {
    const high = acc[2 * i + 1] as number;
    // acc ^= acc >> 47; acc ^= key; acc *= PRIME32_1 (mod 2^64).
    const low =
      ((acc[2 * i] as number) ^ (high >>> 15) ^ read32(SECRET, secretOffset + 8 * i)) >>> 0;
    const mixedHigh = (high ^ read32(SECRET, secretOffset + 8 * i + 4)) >>> 0;
    multiply32(low, PRIME32_1);
    acc[2 * i] = productLow;
    acc[2 * i + 1] = productHigh + Math.imul(mixedHigh, PRIME32_1);
  }
}
