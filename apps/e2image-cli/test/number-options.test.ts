import { readFile, stat, writeFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, requirePeer, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNumber } from '../src/number-option.js';
import { run } from './support/run-cli.js';

/**
 * -o, -O, -b and -B: e2image's number forms (decimal, 0x hex, 0-led octal) mean
 * what they mean to e2image, units are ours, and anything else is a usage error
 * (exit 2) naming the option and the value, never a stack trace or a different
 * number (e2image's strtoull reads "12abc" as 12 and "08" as 0).
 */
let temp: TempDir;
let prefixed: string;
let peerRaw: string;
const START = 8192;

beforeAll(async () => {
  for (const peer of ['mke2fs', 'e2image']) requirePeer(peer);
  temp = await makeTempDir('e2image-cli-numbers-');
  const fs = temp.file('fs.img');
  await runPeerOk('mke2fs', ['-q', '-t', 'ext4', '-b', '1024', fs, '4M']);
  prefixed = temp.file('prefixed.img');
  await writeFile(prefixed, Buffer.concat([Buffer.alloc(START, 0x11), await readFile(fs)]));
  peerRaw = temp.file('peer.raw');
  await runPeerOk('e2image', ['-r', '-o', String(START), prefixed, peerRaw]);
});
afterAll(async () => {
  await temp?.remove();
});

let counter = 0;

describe('numbers e2image reads the same way', () => {
  it.each(['8192', '0x2000', '0X2000', '020000', ' 8192', '8192 '])(
    '-o "%s" reads what e2image -o reads',
    async (value) => {
      const theirs = temp.file(`theirs-${++counter}.raw`);
      await runPeerOk('e2image', ['-r', '-o', value, prefixed, theirs]);
      expect(await filesEqual(theirs, peerRaw)).toBe(true);
      const ours = temp.file(`ours-${counter}.raw`);
      const result = await run(['-r', '-o', value, prefixed, ours]);
      expect(result.stderr).not.toContain('error');
      expect(result.code).toBe(0);
      expect(await filesEqual(ours, peerRaw)).toBe(true);
    },
  );

  it.each(['8K', '8k', '8KiB', '8kb', '8 K', '0.0078125M'])(
    '-o "%s" (a unit e2image does not read) is 8192 bytes',
    async (value) => {
      const ours = temp.file(`unit-${++counter}.raw`);
      const result = await run(['-r', '-o', value, prefixed, ours]);
      expect(result.code).toBe(0);
      expect(await filesEqual(ours, peerRaw)).toBe(true);
    },
  );
});

describe('values that are not a number of bytes exit 2 naming the option and the value', () => {
  const bad: Array<[string, string, string]> = [
    ['-o', '-1', 'source offset (-o)'],
    ['-o', '-0x10', 'source offset (-o)'],
    ['-o', '12abc', 'source offset (-o)'],
    ['-o', '1.5', 'source offset (-o)'],
    ['-o', '1.3K', 'source offset (-o)'],
    ['-o', '1.0000000000000001K', 'source offset (-o)'],
    ['-o', '', 'source offset (-o)'],
    ['-o', '   ', 'source offset (-o)'],
    ['-o', '1 2', 'source offset (-o)'],
    ['-o', '08', 'source offset (-o)'],
    ['-o', '010K', 'source offset (-o)'],
    ['-o', '0x10K', 'source offset (-o)'],
    ['-o', '0x', 'source offset (-o)'],
    ['-o', '1e3', 'source offset (-o)'],
    ['-o', '+4096', 'source offset (-o)'],
    ['-o', 'Infinity', 'source offset (-o)'],
    ['-o', '9007199254740992', 'source offset (-o)'],
    ['-o', '0x20000000000000', 'source offset (-o)'],
    ['-o', '8E', 'source offset (-o)'],
    ['-o', '18446744073709551615', 'source offset (-o)'],
    ['-O', '-4096', 'destination offset (-O)'],
    ['-O', '4096abc', 'destination offset (-O)'],
    ['-O', '0.5', 'destination offset (-O)'],
    ['-O', '', 'destination offset (-O)'],
    ['-b', '8193abc', 'superblock (-b)'],
    ['-b', '-1', 'superblock (-b)'],
    ['-b', '8K', 'superblock (-b)'],
    ['-b', '8193.0', 'superblock (-b)'],
    ['-B', '1024abc', 'block size (-B)'],
    ['-B', '-1024', 'block size (-B)'],
    ['-B', '1.5', 'block size (-B)'],
  ];

  it.each(bad)('%s "%s"', async (option, value, what) => {
    const out = temp.file(`bad-${++counter}.raw`);
    const extra = option === '-b' ? ['-B', '1024'] : [];
    const result = await run(['-r', ...extra, option, value, prefixed, out]);
    expect(result.code).toBe(2);
    // An empty value is refused before the number is read, as every CLI refuses ''.
    expect(result.stderr).toContain(
      value === '' ? `the ${option} option is empty` : `invalid ${what} "${value}": `,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('parseNumber', () => {
  it.each([
    ['0', 0],
    ['00', 0],
    ['4096', 4096],
    ['0x1f', 31],
    ['0755', 493],
    ['\t4096\n', 4096],
    ['1M', 1 << 20],
    ['1.5M', 1.5 * 2 ** 20],
    ['0.5K', 512],
    ['4GiB', 4 * 2 ** 30],
    ['7P', 7 * 2 ** 50],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ['0x1fffffffffffff', Number.MAX_SAFE_INTEGER],
  ])('"%s" is %d', (text, expected) => {
    expect(parseNumber(text, 'offset', true)).toBe(expected);
  });

  it('says why a value is refused', () => {
    expect(() => parseNumber('8E', 'x', true)).toThrow(/above 2\^53 - 1/);
    expect(() => parseNumber('08', 'x', false)).toThrow(/8 and 9 are not octal digits/);
    expect(() => parseNumber('1.3K', 'x', true)).toThrow(/not a whole number of bytes/);
    expect(() => parseNumber('1K', 'superblock (-b)', false)).toThrow(
      'invalid superblock (-b) "1K": expected a non-negative whole number: decimal, 0x hex or 0-led octal',
    );
  });
});
