import { BlockIoError, type ByteRange, MemoryDevice } from '@x/blockio';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { moveFilesystem } from '../src/index.js';

/** Distinct bytes everywhere, so a byte read after it was overwritten shows. */
function patterned(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 8)) % 251;
  return bytes;
}

/** The reference model: every byte in some range copied from the original source to the destination. */
function expectedAfterMove(
  original: Buffer,
  ranges: readonly ByteRange[],
  from: number,
  to: number,
): Buffer {
  const result = Buffer.from(original);
  for (const range of ranges) {
    for (let at = range.offset; at < range.offset + range.length; at++) {
      result[to + at] = original[from + at] as number;
    }
  }
  return result;
}

describe('moveFilesystem', () => {
  it('moves unordered ranges right without overwriting bytes it has not read yet', async () => {
    const original = patterned(16384);
    const device = new MemoryDevice(Buffer.from(original));
    // Descending order: moving right, the first range's chunks used to be copied
    // last, after the second range's had overwritten them.
    const ranges = [
      { offset: 4096, length: 4096 },
      { offset: 0, length: 4096 },
    ];
    const result = await moveFilesystem(device, ranges, 0, 1024, { chunkSize: 1024 });
    expect(result.bytesMoved).toBe(8192);
    expect(device.bytes.equals(expectedAfterMove(original, ranges, 0, 1024))).toBe(true);
  });

  it('counts and copies overlapping ranges once', async () => {
    const original = patterned(16384);
    const device = new MemoryDevice(Buffer.from(original));
    const ranges = [
      { offset: 0, length: 3000 },
      { offset: 1000, length: 3000 },
    ];
    const result = await moveFilesystem(device, ranges, 2048, 2048 + 700, { chunkSize: 512 });
    expect(result.bytesMoved).toBe(4000);
    expect(device.bytes.equals(expectedAfterMove(original, ranges, 2048, 2748))).toBe(true);
  });

  it('gives the same bytes as the reference model for any ranges, offsets and chunk size', async () => {
    const size = 4096;
    const range = fc
      .tuple(fc.nat({ max: 1500 }), fc.nat({ max: 600 }))
      .map(([offset, length]) => ({ offset, length }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(range, { maxLength: 8 }),
        fc.nat({ max: 1900 }),
        fc.nat({ max: 1900 }),
        fc.integer({ min: 1, max: 700 }),
        async (ranges, from, to, chunkSize) => {
          const original = patterned(size);
          const device = new MemoryDevice(Buffer.from(original));
          await moveFilesystem(device, ranges, from, to, { chunkSize });
          expect(device.bytes.equals(expectedAfterMove(original, ranges, from, to))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a range past the end of the device before writing anything', async () => {
    const original = patterned(8192);
    const device = new MemoryDevice(Buffer.from(original), { name: 'disk.img' });
    const ranges = [
      { offset: 0, length: 1024 },
      { offset: 6144, length: 2048 }, // ends at 8192 + 1024 once moved
    ];
    const error = await moveFilesystem(device, ranges, 0, 1024, { chunkSize: 512 }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({
      code: 'OUT_OF_RANGE',
      path: 'disk.img',
      structure: 'move destination',
    });
    expect(device.bytes.equals(original)).toBe(true);

    const source = await moveFilesystem(device, ranges, 1024, 0).catch((caught: unknown) => caught);
    expect(source).toMatchObject({ code: 'OUT_OF_RANGE', structure: 'move source' });
    expect(device.bytes.equals(original)).toBe(true);
  });

  it('refuses a negative or fractional range before writing anything', async () => {
    const original = patterned(8192);
    const device = new MemoryDevice(Buffer.from(original));
    for (const bad of [
      { offset: 1024, length: -512 },
      { offset: -1, length: 10 },
      { offset: 0.5, length: 10 },
    ]) {
      const ranges = [{ offset: 0, length: 1024 }, bad];
      const error = await moveFilesystem(device, ranges, 0, 2048).catch(
        (caught: unknown) => caught,
      );
      expect(error).toMatchObject({
        code: 'OUT_OF_RANGE',
        structure: expect.stringMatching(/^move range 1 /),
      });
      expect(device.bytes.equals(original)).toBe(true);
    }
  });
});
