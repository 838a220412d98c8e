import { stat } from 'node:fs/promises';
import { copy, createOutputFile, FileDevice } from '@x/blockio';
import { makeTempDir } from '@x/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { openQcow2, SequentialQcow2Image } from '../../src/index.js';
import { refcountMetadataSize } from '../../src/write/refcount-metadata-size.js';
import { expectClean, firstDifference, guestBytes } from './support.js';

const temp = await makeTempDir('qcow2-sequential-');
afterAll(() => temp.remove());

/** Guest bytes with data runs (some crossing L2 coverage boundaries) and holes. */
function guestImage(size: number, clusterSize: number): Buffer {
  const bytes = Buffer.alloc(size);
  let state = 7;
  const next = (limit: number) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state % limit;
  };
  const clusters = size / clusterSize;
  for (let run = 0; run < 40; run++) {
    const first = next(clusters);
    const length = 1 + next(300);
    for (let c = first; c < Math.min(clusters, first + length); c++) {
      // Zero clusters inside runs stay unallocated (copy skips them).
      if (next(5) === 0) continue;
      for (let at = 0; at < clusterSize; at += 64) {
        bytes.writeUInt32LE(next(0xffffffff) + 1, c * clusterSize + at);
      }
    }
  }
  return bytes;
}

function difference(a: Buffer, b: Buffer): number {
  return a.equals(b) ? -1 : firstDifference(a, b);
}

async function build(name: string, bytes: Buffer, clusterSize: number) {
  const raw = temp.file(`${name}.raw`);
  const output = await createOutputFile(raw);
  await output.device.write(0, bytes);
  await output.commit();
  const source = await FileDevice.open(raw);
  const path = temp.file(`${name}.qcow2`);
  const target = await createOutputFile(path, { sync: false });
  const image = SequentialQcow2Image.create(target.device, {
    virtualSize: bytes.byteLength,
    clusterSize,
  });
  await copy(source, image, { concurrency: 1, zeroGranularity: clusterSize });
  const result = await image.finish();
  await target.commit();
  await source.close();
  return { path, result };
}

describe('SequentialQcow2Image', () => {
  for (const clusterSize of [512, 4096, 65536]) {
    it(`${clusterSize}-byte clusters: qemu-img check finds nothing; qemu-img and openQcow2 read the same bytes`, async () => {
      // 9,000 clusters cross many L2 tables at 512 B and 4 KiB; 64 KiB needs fewer.
      const size = clusterSize * (clusterSize > 4096 ? 600 : 9000);
      const bytes = guestImage(size, clusterSize);
      const { path, result } = await build(`c${clusterSize}`, bytes, clusterSize);
      await expectClean(path);
      const back = await guestBytes(path, temp.file(`c${clusterSize}.back`));
      expect(difference(back, bytes)).toBe(-1);
      const image = await openQcow2(path);
      try {
        expect(difference(await image.read(0, size), bytes)).toBe(-1);
        expect(result.fileSize).toBe((await stat(path)).size);
      } finally {
        await image.close();
      }
    });
  }

  it('an image with no data is header, L1 and refcounts only', async () => {
    const { path, result } = await build('empty', Buffer.alloc(1 << 20), 4096);
    await expectClean(path);
    expect(result).toEqual({ fileSize: 4 * 4096, dataClusters: 0, l2Tables: 0, refcountBlocks: 1 });
  });

  it('refuses writes that go backwards or start inside a cluster', async () => {
    const target = await createOutputFile(temp.file('order.qcow2'), { sync: false });
    const image = SequentialQcow2Image.create(target.device, {
      virtualSize: 1 << 20,
      clusterSize: 4096,
    });
    await image.write(8192, Buffer.alloc(4096, 1));
    await expect(image.write(4096, Buffer.alloc(4096, 1))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(image.write(12289, Buffer.alloc(10, 1))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await target.abort();
  });

  it('refuses cluster sizes QCOW2 does not have and L1 tables over 32 MiB', async () => {
    const target = await createOutputFile(temp.file('bad.qcow2'), { sync: false });
    expect(() =>
      SequentialQcow2Image.create(target.device, { virtualSize: 1 << 20, clusterSize: 1000 }),
    ).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
    expect(() =>
      SequentialQcow2Image.create(target.device, { virtualSize: 2 ** 52, clusterSize: 512 }),
    ).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    await target.abort();
  });

  it('refcount structures cover themselves', () => {
    for (const [used, clusterSize] of [
      [1, 512],
      [255, 512],
      [256, 512],
      [65_535, 512],
      [18_397, 4096],
      [10_000_000, 65536],
    ] as const) {
      const { refblocks, tableClusters } = refcountMetadataSize(used, clusterSize, 4, false);
      const totalClusters = used + tableClusters + refblocks;
      expect(refblocks * (clusterSize / 2)).toBeGreaterThanOrEqual(totalClusters);
      expect(tableClusters * (clusterSize / 8)).toBeGreaterThanOrEqual(refblocks);
    }
  });
});
