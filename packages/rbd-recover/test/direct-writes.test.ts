import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { allocateAligned } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeDirect,
  DIRECT_ALIGNMENT,
  DirectWriter,
  openDirect,
} from '../src/assemble/direct-writes.js';

let temp: TempDir;

beforeAll(async () => {
  temp = await makeTempDir('rbd-direct-');
});

afterAll(async () => {
  await temp?.remove();
});

const MiB = 1 << 20;

function pattern(length: number, seed: number): Buffer {
  const data = allocateAligned(length);
  for (let i = 0; i < length; i++) data[i] = (i * 7 + seed) & 0xff;
  return data;
}

describe('direct writes', () => {
  it('aligned parts go through O_DIRECT, tails and unaligned writes through the plain descriptor; the bytes are the same', async () => {
    const file = temp.file('out.raw');
    await writeFile(file, '');
    await truncate(file, 4 * MiB);
    const plain = await open(file, 'r+');
    const direct = [await openDirect(file)];
    // The temp directory's file system takes O_DIRECT here (ext4); where one does not,
    // everything goes through the plain descriptor and only the bytes are checked.
    const directFd = direct[0]?.fd;
    const expected = Buffer.alloc(4 * MiB);
    const writer = new DirectWriter();
    try {
      const whole = pattern(MiB + 100, 1); // 1 MiB direct, a 100-byte tail plain
      writer.write(plain.fd, directFd, whole, 0, true);
      whole.copy(expected, 0);
      const directAfterFirst = writer.directBytes;
      const offAlignment = pattern(64 * 1024, 2); // at an unaligned offset: all plain
      writer.write(plain.fd, directFd, offAlignment, 2 * MiB + 1, true);
      offAlignment.copy(expected, 2 * MiB + 1);
      const unalignedMemory = pattern(2 * DIRECT_ALIGNMENT, 3).subarray(1, DIRECT_ALIGNMENT + 1);
      writer.write(plain.fd, directFd, unalignedMemory, 3 * MiB, true);
      unalignedMemory.copy(expected, 3 * MiB);
      const notAligned = pattern(DIRECT_ALIGNMENT, 4); // the caller says: not page-aligned
      writer.write(plain.fd, directFd, notAligned, 3 * MiB + DIRECT_ALIGNMENT, false);
      notAligned.copy(expected, 3 * MiB + DIRECT_ALIGNMENT);
      if (directFd !== undefined) {
        expect(directAfterFirst).toBe(MiB);
        expect(writer.directBytes).toBe(MiB);
      } else {
        expect(writer.directBytes).toBe(0);
      }
    } finally {
      await closeDirect(direct);
      expect(direct).toEqual([undefined]);
      await plain.close();
    }
    expect((await readFile(file)).equals(expected)).toBe(true);
  });

  it('openDirect: undefined for a path that cannot be opened', async () => {
    expect(await openDirect(temp.file('no-such-dir/out.raw'))).toBeUndefined();
  });
});
