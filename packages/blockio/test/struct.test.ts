import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bytes,
  defineStruct,
  fixedString,
  i32be,
  i32le,
  reserved,
  toSafeNumber,
  u8,
  u16be,
  u16le,
  u32be,
  u32le,
  u64be,
  u64le,
} from '../src/index.js';

// Every field type, packed with no gaps: any 96 bytes are a valid encoding.
const everyType = defineStruct('every type', 96, [
  { name: 'magic', offset: 0, type: u32be, doc: 'big-endian like QCOW2' },
  { name: 'version', offset: 4, type: u32le },
  { name: 'flags', offset: 8, type: u16be },
  { name: 'count', offset: 10, type: u16le },
  { name: 'kind', offset: 12, type: u8 },
  { name: 'pad', offset: 13, type: reserved(3) },
  { name: 'size', offset: 16, type: u64be },
  { name: 'blocks', offset: 24, type: u64le },
  { name: 'delta', offset: 32, type: i32le },
  { name: 'skew', offset: 36, type: i32be },
  { name: 'uuid', offset: 40, type: bytes(16) },
  { name: 'spare', offset: 56, type: reserved(40) },
] as const);

// Strings (NUL-padded) and a gap, which encodes as zeros.
const withStrings = defineStruct('with strings', 64, [
  { name: 'label', offset: 0, type: fixedString(16) },
  { name: 'volume', offset: 16, type: fixedString(24, 'utf8') },
  { name: 'size', offset: 48, type: u64le },
] as const);

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const latin1 = fc
  .array(fc.integer({ min: 1, max: 0xff }), { maxLength: 16 })
  .map((codes) => String.fromCharCode(...codes));
const utf8 = fc
  .string({ unit: 'grapheme', maxLength: 6 })
  .filter((text) => !text.includes('\0') && Buffer.byteLength(text) <= 24);

describe('defineStruct codecs', () => {
  it('round-trip random values of every field type (u64 as bigint)', () => {
    const value = fc.record({
      magic: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      version: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      flags: fc.integer({ min: 0, max: 0xffff }),
      count: fc.integer({ min: 0, max: 0xffff }),
      kind: fc.integer({ min: 0, max: 0xff }),
      pad: fc.uint8Array({ minLength: 3, maxLength: 3 }),
      size: u64,
      blocks: u64,
      delta: i32,
      skew: i32,
      uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      spare: fc.uint8Array({ minLength: 40, maxLength: 40 }),
    });
    fc.assert(
      fc.property(value, (input) => {
        const encoded = everyType.encode(input);
        expect(encoded.byteLength).toBe(96);
        expect(everyType.decode(encoded)).toEqual(input);
      }),
    );
  });

  it('re-encode any bytes unchanged, reserved ranges included', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 96 + 7, maxLength: 96 + 7 }),
        fc.nat(7),
        (raw, offset) => {
          const decoded = everyType.decode(raw, offset);
          const target = new Uint8Array(raw.byteLength);
          everyType.encode(decoded, target, offset);
          expect(Buffer.from(target.subarray(offset, offset + 96))).toEqual(
            Buffer.from(raw.subarray(offset, offset + 96)),
          );
        },
      ),
    );
  });

  it('round-trip strings and zero the gaps', () => {
    fc.assert(
      fc.property(latin1, utf8, u64, (label, volume, size) => {
        const encoded = withStrings.encode({ label, volume, size });
        expect(withStrings.decode(encoded)).toEqual({ label, volume, size });
        expect(encoded.subarray(40, 48).every((byte) => byte === 0)).toBe(true);
      }),
    );
  });

  it('lays out fields at their table offsets with the stated byte order', () => {
    const encoded = Buffer.from(
      everyType.encode({
        magic: 0x514649fb,
        version: 3,
        flags: 0x0102,
        count: 0x0102,
        kind: 7,
        pad: new Uint8Array(3),
        size: 0x0102030405060708n,
        blocks: 0x0102030405060708n,
        delta: -2,
        skew: -2,
        uuid: new Uint8Array(16).fill(0xaa),
        spare: new Uint8Array(40),
      }),
    );
    expect(encoded.subarray(0, 13).toString('hex')).toBe(
      '514649fb' + '03000000' + '0102' + '0201' + '07',
    );
    expect(encoded.subarray(16, 32).toString('hex')).toBe('01020304050607080807060504030201');
    expect(encoded.subarray(32, 40).toString('hex')).toBe('feffffff' + 'fffffffe'); // -2 little- then big-endian
    expect(everyType.offsetOf('uuid')).toBe(40);
  });

  it('names the structure and field when values or buffers do not fit', () => {
    expect(() => everyType.decode(new Uint8Array(95))).toThrow(
      expect.objectContaining({ code: 'SHORT_READ', structure: 'every type' }),
    );
    expect(() => everyType.decode(new Uint8Array(100), 5)).toThrow(
      expect.objectContaining({ code: 'SHORT_READ' }),
    );
    const good = everyType.decode(new Uint8Array(96));
    const tooBig = [
      { ...good, flags: 0x10000 },
      { ...good, kind: -1 },
      { ...good, delta: 2 ** 31 },
      { ...good, size: 2n ** 64n },
      { ...good, uuid: new Uint8Array(15) },
    ];
    for (const value of tooBig) {
      expect(() => everyType.encode(value)).toThrow(
        expect.objectContaining({ code: 'OUT_OF_RANGE', structure: 'every type' }),
      );
    }
    const strings = withStrings.decode(new Uint8Array(64));
    for (const label of ['x'.repeat(17), 'ā', 'a\0b']) {
      expect(() => withStrings.encode({ ...strings, label })).toThrow(
        expect.objectContaining({ code: 'OUT_OF_RANGE' }),
      );
    }
    expect(() => everyType.encode(good, new Uint8Array(100), 5)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
  });

  it('hands u64 fields to toSafeNumber, which names the field when too large', () => {
    const raw = new Uint8Array(96).fill(0xff);
    const decoded = everyType.decode(raw);
    expect(decoded.size).toBe(2n ** 64n - 1n);
    expect(() => toSafeNumber(decoded.size, 'every type.size')).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER', structure: 'every type.size' }),
    );
  });

  it('rejects field tables that do not fit or repeat a name', () => {
    expect(() => defineStruct('bad', 4, [{ name: 'x', offset: 2, type: u32le }] as const)).toThrow(
      /outside 4 bytes/,
    );
    expect(() =>
      defineStruct('bad', 8, [
        { name: 'x', offset: 0, type: u32le },
        { name: 'x', offset: 4, type: u32le },
      ] as const),
    ).toThrow(/defined twice/);
  });
});
