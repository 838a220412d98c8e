import { describe, expect, it } from 'vitest';
import { xxh3 } from '../src/xxh3.js';
import { xxHash32, xxHash64 } from '../src/xxhash.js';

/** The bytes hashed: a linear congruential sequence, as the script that made the vectors. */
function data(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 0x12345678;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

/**
 * [length, XXH3_64bits, XXH32 seed 0, XXH64 seed 0] computed by libxxhash 0.8.1 (ctypes),
 * covering every XXH3 length class (0, 1–3, 4–8, 9–16, 17–128, 129–240, long, several blocks).
 */
const VECTORS: Array<[number, bigint, number, bigint]> = [
  [0, 0x2d06800538d394c2n, 0x02cc5d05, 0xef46db3751d8e999n],
  [1, 0xf2386670cff0b396n, 0xa11f6f39, 0x1b00b0a90a478a4dn],
  [2, 0x399a410da9d059acn, 0x63630e3f, 0x747927ae9309bb0an],
  [3, 0xc61b62d548445f86n, 0x894823ce, 0x505a602d926aca90n],
  [4, 0xf19ab173417737bfn, 0x951ce9fd, 0x30f20d0eea146918n],
  [5, 0xc91f278bd51d906an, 0x12627f9b, 0xfb753b9d5dfa75b2n],
  [7, 0xbfce666f074d62e4n, 0x8812171e, 0xc83a270f8eb48763n],
  [8, 0xeafc1d751e6b1584n, 0x4f36577e, 0x94e903778fb398e2n],
  [9, 0x8ec6f032117277a9n, 0x6350ff3a, 0x2e5c170f043a77c6n],
  [12, 0x0f1248bf3d8d2b59n, 0x056bda0d, 0xa314af00de17ed7fn],
  [15, 0xeb3efcac70f31752n, 0xc0145d4b, 0x26497f7cac91bfe9n],
  [16, 0x2d856f37dc756502n, 0x069222f3, 0x4c8a9197ae8b509cn],
  [17, 0xa3115a16d3fce177n, 0x3792b30e, 0xc123530cdea339b9n],
  [31, 0xad0a1fb551fea8e2n, 0xc69ededf, 0xcefe6160de05c2f5n],
  [32, 0x8882e301cfcf5029n, 0xefb370c8, 0x3628382e62e6d951n],
  [33, 0x97121f11e29cf776n, 0x6ba93fa8, 0x9aaec54af166496dn],
  [48, 0xe9475ed383a2a62bn, 0x74e35e46, 0x1ed23b0d21a27ee4n],
  [63, 0xfb43a867812c5f4dn, 0x8f8c1cf0, 0xc65c6cf7c39dc8b5n],
  [64, 0x3426c018d730966en, 0xd07ae7cb, 0xbe06faf66ce0995cn],
  [65, 0x9dbb45ca093e3543n, 0x1687b75a, 0xc51ac8ba45fd91a4n],
  [80, 0x48664c9893d472dcn, 0xf9b3e3d6, 0x7a7d2f2bd8cb0d5an],
  [96, 0x1e114072d0c855f0n, 0xd959ecad, 0x305ea54a5e0e5630n],
  [97, 0x649b3141d5045b89n, 0x84630a86, 0xb5449172312c3811n],
  [127, 0xb21fac217dce0a21n, 0xb46eb1d7, 0xb0e41a369d683244n],
  [128, 0x634e84aafc9d9c38n, 0x9033dbc4, 0x00e99852e0e67bdan],
  [129, 0x8717c9d0bc8f3428n, 0x220b2c01, 0x9eff980e791a7f0dn],
  [150, 0x0e2b24b19b12db42n, 0x79a422db, 0x4738bb5872aebd36n],
  [160, 0x7e9080fb80ded8a2n, 0x4cbb73b1, 0x1c744fc4aff7f6f6n],
  [200, 0x2284ab05b3355b37n, 0x8f940426, 0xc7e05937ab60a950n],
  [239, 0xc739c28655cf1e68n, 0x8f4cd6d1, 0x4ac918a4be289e86n],
  [240, 0x4e24ea1bdad4256en, 0xb89a997d, 0x45c1568c95afab51n],
  [241, 0xfff5cb6173c21db3n, 0x0cb92a90, 0xd020af0ed55b378bn],
  [255, 0x59ddcae2845187e1n, 0x87b1a39d, 0xf24c60e1f064944an],
  [256, 0x7c38202cccb15295n, 0x87c47075, 0xfc1389d76be7cbd4n],
  [300, 0x8987ea504a68818cn, 0x41cb79a1, 0x7efc3aa20b6df6d6n],
  [511, 0x8a4a5ccc9e596b36n, 0xf760722f, 0x2c31754f4b5834dbn],
  [512, 0x99de5a8184567530n, 0x7c8872a5, 0xca0af70614b6e694n],
  [1023, 0x1110e85dff9b3c63n, 0xc70a5a3c, 0xdc00ce14a632df8cn],
  [1024, 0xe665714672b7cd0bn, 0x4d88671c, 0xbe0306018aa6aed6n],
  [1025, 0x92ec889150e4180cn, 0x0dfc2d83, 0x10b920bae881671cn],
  [1088, 0xf75e3b027532b8bcn, 0xcd6151cb, 0x51bdb62cdbffbeb3n],
  [2047, 0xdc367aa47391e8fen, 0x0198f505, 0xd236975e463da32fn],
  [2048, 0xa77da7db9394a0fbn, 0x0d338131, 0x061dfd94bc3bf63an],
  [2049, 0x75e310d52ed05292n, 0x199c124c, 0x6deb574b00e8cc10n],
  [4096, 0x5fe8fb4c8a5e291cn, 0x8fc44276, 0xf75285ba9b19a6a8n],
  [5000, 0x23a36f23a900e903n, 0xbf05ab0b, 0xb6d73d766e7a625an],
  [10000, 0x27eac1e42e7c7248n, 0xbf872a63, 0x4eb2b47879fa183cn],
];

describe('xxHash', () => {
  it.each(VECTORS)(
    'length %i: XXH3-64, XXH32 and XXH64 equal libxxhash',
    (length, h3, h32, h64) => {
      const input = data(length);
      expect(xxh3(input)).toBe(h3);
      expect(xxHash32(input)).toBe(h32);
      expect(xxHash64(input)).toBe(h64);
    },
  );
});
