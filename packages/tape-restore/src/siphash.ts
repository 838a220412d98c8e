/**
 * SipHash-2-4 over bytes with a 128-bit key given as two u64 (k0, k1), as pxar uses
 * for item types and goodbye-table hashes (pbs-tape.md §8). BigInt is fast enough:
 * it runs once per file name, never per byte of data.
 */
const MASK = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & MASK;

export function siphash24(k0: bigint, k1: bigint, data: Uint8Array): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & MASK;
    v1 = rotl(v1, 13n);
    v1 ^= v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK;
    v3 = rotl(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & MASK;
    v3 = rotl(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & MASK;
    v1 = rotl(v1, 17n);
    v1 ^= v2;
    v2 = rotl(v2, 32n);
  };
  const length = data.byteLength;
  const whole = length - (length % 8);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let offset = 0; offset < whole; offset += 8) {
    const m = view.getBigUint64(offset, true);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  let last = BigInt(length & 0xff) << 56n;
  for (let i = 0; i < length % 8; i++) {
    last |= BigInt(data[whole + i] ?? 0) << BigInt(8 * i);
  }
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xffn;
  round();
  round();
  round();
  round();
  return (v0 ^ v1 ^ v2 ^ v3) & MASK;
}
