import { existsSync } from 'node:fs';
import { createOutputFile } from '@x/blockio';
import { makeTempDir, seededBytes, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQcow2In } from '../../src/index.js';
import { expectClean, firstDifference, guestBytes } from './support.js';

const M = 1 << 20;

// An image created inside a createOutputFile output is filled under
// `<path>.partial` and appears under its name only on commit.
describe('createQcow2In: a new image inside an atomic output', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-create-in-');
  });
  afterAll(() => dir.remove());

  it('commit: a clean image holding what was written, under its name only then', async () => {
    const path = dir.file('committed.qcow2');
    const expected = Buffer.alloc(8 * M);
    const pieces = [
      { offset: 0, bytes: seededBytes(100_000, 1) },
      { offset: 3 * M + 512, bytes: seededBytes(2 * M, 2) },
      { offset: 8 * M - 4096, bytes: Buffer.alloc(4096, 0x7e) },
    ];
    const output = await createOutputFile(path);
    try {
      const image = await createQcow2In(output, { size: 8 * M, clusterSize: 4096 });
      try {
        for (const { offset, bytes } of pieces) {
          await image.write(offset, bytes);
          bytes.copy(expected, offset);
        }
        expect(existsSync(path)).toBe(false);
        expect(existsSync(output.partialPath)).toBe(true);
      } finally {
        await image.close();
      }
      await output.commit();
    } catch (error) {
      await output.abort();
      throw error;
    }
    expect(existsSync(`${path}.partial`)).toBe(false);
    await expectClean(path);
    const actual = await guestBytes(path, dir.file('committed.raw'));
    expect(actual.byteLength).toBe(expected.byteLength);
    expect(firstDifference(actual, expected)).toBe(-1);
  });

  it('commit without closing the image first still publishes a complete, clean image', async () => {
    const path = dir.file('unclosed.qcow2');
    const data = seededBytes(3 * M + 1234, 4);
    const output = await createOutputFile(path);
    const image = await createQcow2In(output, { size: 8 * M, clusterSize: 4096 });
    await image.write(M, data);
    await output.commit();
    expect(image.closed).toBe(true);
    await expectClean(path);
    const actual = await guestBytes(path, dir.file('unclosed.raw'));
    const expected = Buffer.alloc(8 * M);
    data.copy(expected, M);
    expect(firstDifference(actual, expected)).toBe(-1);
  });

  it('abort: neither the image nor its partial file is left', async () => {
    const path = dir.file('aborted.qcow2');
    const output = await createOutputFile(path);
    const image = await createQcow2In(output, { size: 4 * M });
    await image.write(M, seededBytes(300_000, 3));
    await image.close();
    expect(existsSync(output.partialPath)).toBe(true);
    await output.abort();
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.partial`)).toBe(false);
  });

  it('bad options are refused before anything is written; the caller still aborts', async () => {
    const path = dir.file('refused.qcow2');
    const output = await createOutputFile(path);
    await expect(createQcow2In(output, { size: M, clusterSize: 3000 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await output.abort();
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.partial`)).toBe(false);
  });
});
