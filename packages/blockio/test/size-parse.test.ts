import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../src/index.js';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['0', 0],
    ['0x1f000', 0x1f000],
    ['0X1F000', 0x1f000],
    ['512K', 512 * 1024],
    ['512k', 512 * 1024],
    ['4G', 4 * 2 ** 30],
    ['4GiB', 4 * 2 ** 30],
    ['4GB', 4 * 2 ** 30],
    ['1.5M', 1.5 * 2 ** 20],
    ['2s', 1024],
    ['2S', 1024],
    ['1.5s', 768],
    ['100b', 100],
    ['100B', 100],
    ['64k', 64 * 1024],
    ['4kb', 4 * 1024],
    ['4KiB', 4 * 1024],
    ['4kib', 4 * 1024],
    ['2M', 2 * 2 ** 20],
    ['2MiB', 2 * 2 ** 20],
    ['3T', 3 * 2 ** 40],
    ['7P', 7 * 2 ** 50],
    [' 64M ', 64 * 2 ** 20],
    ['0x1fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    // Decimals are exact, however many digits: no rounding through a double.
    ['9007199254740991.0', Number.MAX_SAFE_INTEGER],
    ['0.001953125K', 2],
    ['1.50K', 1536],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    ...['', 'G', '-1', '1.2.3', '12Q', '0x', '0xg', '1e3', 'four', '4 G B', '0.3K'],
    // Odd suffixes: only B, s, and K…E alone or followed by B or iB are sizes.
    ...['4ib', '4i', '1bib', '1bb', '1bi', '2sib', '2sb', '2si', '4Ki', '4KBi', '4KiBB', '4kk'],
    // Not whole numbers of bytes, though a double rounds them to one.
    ...['1.0000000000000001K', '9007199254740991.5', '0.1K', '1.00000000000000000001'],
  ])('"%s" is an INVALID_ARGUMENT naming the input', (text) => {
    expect(() => parseSize(text, 'offset')).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining(`invalid offset "${text}"`),
      }),
    );
  });

  it('says a fraction of a byte is not a whole number of bytes', () => {
    expect(() => parseSize('9007199254740991.5', 'offset')).toThrow(
      'invalid offset "9007199254740991.5": not a whole number of bytes',
    );
  });

  it.each(['9007199254740992', '0x20000000000000', '8P', '8E', '1.5E', '9007199254740992.0'])(
    '"%s" is beyond 2^53 - 1: UNSAFE_INTEGER',
    (text) => {
      expect(() => parseSize(text)).toThrow(expect.objectContaining({ code: 'UNSAFE_INTEGER' }));
    },
  );
});

describe('formatSize', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.50 KiB'],
    [10 * 2 ** 20, '10.0 MiB'],
    [2 ** 33, '8.00 GiB'],
    [300 * 2 ** 30, '300 GiB'],
  ])('%d is %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});
