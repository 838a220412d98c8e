import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cUpdate, maskCrc32c, unmaskCrc32c } from '../src/index.js';

/** Bit at a time, straight from the definition: the model the tables must agree with. */
function referenceRegister(state: number, data: Uint8Array): number {
  let c = state >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

/** LevelDB's Mask written with bigints, independent of 32-bit operator tricks. */
function referenceMask(crc: number): number {
  const value = BigInt(crc >>> 0);
  const rotated = ((value >> 15n) | (value << 17n)) & 0xffffffffn;
  return Number((rotated + 0xa282ead8n) & 0xffffffffn);
}

const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);

describe('crc32c (standard CRC-32C)', () => {
  // RFC 3720 B.4 and LevelDB's crc32c_test StandardResults.
  it.each([
    ['"123456789" (check value)', new TextEncoder().encode('123456789'), 0xe3069283],
    ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
    ['32 bytes of 0xff', new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ['32 ascending bytes', ascending, 0x46dd794e],
    ['32 descending bytes', ascending.slice().reverse(), 0x113fdb5c],
    [
      'an iSCSI READ(10) command PDU',
      Uint8Array.from([
        0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0,
        0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0,
      ]),
      0xd9963a56,
    ],
    ['no bytes', new Uint8Array(0), 0],
  ])('%s', (_name, data, expected) => {
    expect(crc32c(data)).toBe(expected);
  });

  it('continues from an earlier result given as seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
        const whole = new Uint8Array([...a, ...b]);
        expect(crc32c(b, crc32c(a))).toBe(crc32c(whole));
      }),
    );
  });

  it('is the inverted raw register started from ~0', () => {
    const data = new TextEncoder().encode('123456789');
    expect(~crc32cUpdate(0xffffffff, data) >>> 0).toBe(crc32c(data));
  });
});

describe('crc32cUpdate (raw register, ext4 form)', () => {
  it('has no final inversion: "123456789" from ~0 is ~0xE3069283', () => {
    expect(crc32cUpdate(0xffffffff, new TextEncoder().encode('123456789'))).toBe(0x1cf96d7c);
  });

  it('agrees with a bit-at-a-time model for any state, length and alignment', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 100 }),
        fc.nat(),
        fc.nat(),
        (state, data, x, y) => {
          const start = data.length === 0 ? 0 : x % (data.length + 1);
          const end = start + (y % (data.length - start + 1));
          expect(crc32cUpdate(state, data, start, end)).toBe(
            referenceRegister(state, data.subarray(start, end)),
          );
        },
      ),
    );
  });

  it('chains: the update over a then b equals the update over both', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 64 }),
        (state, a, b) => {
          expect(crc32cUpdate(crc32cUpdate(state, a), b)).toBe(
            crc32cUpdate(state, new Uint8Array([...a, ...b])),
          );
        },
      ),
    );
  });
});

describe('maskCrc32c / unmaskCrc32c (LevelDB masking)', () => {
  it('masks as LevelDB does: rotate right 15, add 0xa282ead8 mod 2^32', () => {
    // crc32c("foo") = 0xcfc4ae1d, rotated right by 15 = 0x5c3b9f89, + 0xa282ead8.
    const foo = crc32c(new TextEncoder().encode('foo'));
    expect(foo).toBe(0xcfc4ae1d);
    expect(maskCrc32c(foo)).toBe(0xfebe8a61);
    expect(unmaskCrc32c(0xfebe8a61)).toBe(foo);
    expect(maskCrc32c(0)).toBe(0xa282ead8);
    expect(maskCrc32c(0xffffffff)).toBe(0xa282ead7);
  });

  it('matches the bigint model and unmask inverts it, twice over too', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (crc) => {
        expect(maskCrc32c(crc)).toBe(referenceMask(crc));
        expect(unmaskCrc32c(maskCrc32c(crc))).toBe(crc);
        expect(unmaskCrc32c(unmaskCrc32c(maskCrc32c(maskCrc32c(crc))))).toBe(crc);
        expect(maskCrc32c(crc)).not.toBe(crc);
      }),
    );
  });
});
