import { randomBytes } from 'node:crypto';
import { createQcow2, openQcow2, type Qcow2Image } from '@x/qcow2';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zeroSpans } from '../src/create/equality-hints.js';
import { intersectSpans, spanLength } from '../src/create/ranges.js';
import { createBackup, qcow2SharedRanges, type SharedRanges } from '../src/index.js';
import { wholeRangeShared } from '../src/sources/qcow2-tables.js';
import { collector } from './support/memory.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CLUSTER = 64 * KiB;
const SIZE = 16 * MiB;

/**
 * Snapshots s1 and s2 of one image: data in [0, 12 MiB) and a compressed cluster at
 * 13 MiB in both; s2 rewrites a cluster at 1 MiB and 512 bytes at 3 MiB, zeroes a
 * cluster at 2 MiB, writes a new cluster at 14 MiB; [12, 13 MiB) stays unallocated.
 */
async function snapshotImage(path: string): Promise<void> {
  await createQcow2(path, { size: SIZE, clusterSize: CLUSTER });
  const image = await openQcow2(path, { writable: true });
  await image.write(0, randomBytes(12 * MiB));
  await image.writeCompressed(13 * MiB, Buffer.alloc(CLUSTER, 7));
  await image.createSnapshot('s1');
  await image.write(1 * MiB, randomBytes(CLUSTER));
  await image.write(3 * MiB + 4 * KiB, randomBytes(512));
  await image.writeZeroes(2 * MiB, CLUSTER);
  await image.write(14 * MiB, randomBytes(CLUSTER));
  await image.createSnapshot('s2');
  await image.close();
}

/** The generic answer: shared per the views' mappings, and data (not zeros) on both sides. */
async function genericWholly(from: Qcow2Image, to: Qcow2Image, offset: number, end: number) {
  const shared = await qcow2SharedRanges(from, to)(offset, end - offset);
  const zero = intersectSpans(await zeroSpans(from, offset, end), await zeroSpans(to, offset, end));
  return spanLength(shared) === end - offset && zero.length === 0;
}

describe('QCOW2 snapshots compared table by table (wholeRangeShared)', () => {
  let temp: TempDir;
  let path: string;
  let from: Qcow2Image;
  let to: Qcow2Image;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-qcow2-tables-');
    path = temp.file('disk.qcow2');
    await snapshotImage(path);
    from = await openQcow2(path, { snapshot: 's1' });
    to = await openQcow2(path, { snapshot: 's2' });
  });
  afterAll(async () => {
    await from?.close();
    await to?.close();
    await temp.remove();
  });

  it('says "shared" exactly where the mappings say shared data, cluster by cluster and in larger ranges', async () => {
    for (const step of [CLUSTER, 512, MiB, 4 * MiB]) {
      for (let offset = 0; offset < SIZE; offset += step) {
        const end = Math.min(SIZE, offset + step);
        const quick = await wholeRangeShared(from, to, offset, end);
        // Compressed clusters are left to the generic way (quick says false there).
        const compressed = offset < 13 * MiB + CLUSTER && end > 13 * MiB;
        if (compressed) expect(quick).toBe(false);
        else expect([offset, quick]).toEqual([offset, await genericWholly(from, to, offset, end)]);
      }
    }
    expect(await wholeRangeShared(from, to, 0, MiB)).toBe(true);
    expect(await wholeRangeShared(from, to, MiB, MiB + CLUSTER)).toBe(false);
    expect(await wholeRangeShared(from, to, 3 * MiB, 3 * MiB + CLUSTER)).toBe(false);
    // Past the end, an empty range, and one view against itself through two opens.
    expect(await wholeRangeShared(from, to, SIZE - CLUSTER, SIZE + CLUSTER)).toBe(false);
    expect(await wholeRangeShared(from, to, CLUSTER, CLUSTER)).toBe(false);
    const again = await openQcow2(path, { snapshot: 's1' });
    try {
      expect(await wholeRangeShared(from, again, 0, 12 * MiB)).toBe(true);
    } finally {
      await again.close();
    }
  });

  it('lets createBackup skip wholly shared objects without building their mappings: the same stream and counts', async () => {
    const objectSize = MiB;
    const generic = qcow2SharedRanges(from, to);
    const plain: SharedRanges = (offset, length) => generic(offset, length);
    const asked: number[] = [];
    const counted: SharedRanges = (offset, length) => {
      asked.push(offset / objectSize);
      return generic(offset, length);
    };
    counted.wholly = generic.wholly;
    const run = async (sharedRanges: SharedRanges) => {
      const sink = collector();
      const result = await createBackup(from, to, { output: sink, objectSize, sharedRanges });
      return { result, bytes: sink.bytes() };
    };
    const slow = await run(plain);
    const quick = await run(counted);
    expect(quick.bytes.equals(slow.bytes)).toBe(true);
    expect(quick.result).toEqual(slow.result);
    // Objects 0 and 4-11 are wholly shared data; 1, 2, 3 changed; 12-15 hold
    // unallocated, compressed or new clusters: only those are mapped.
    expect(asked).toEqual([1, 2, 3, 12, 13, 14, 15]);
    expect(quick.result).toMatchObject({
      objectsSkippedShared: 10,
      objectsSkippedUnallocated: 2,
      objectsCompared: 4,
    });
  });
});
