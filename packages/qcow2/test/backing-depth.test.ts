import { makeTempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backingChainInfo, createQcow2, MAX_BACKING_DEPTH, openQcow2 } from '../src/index.js';

// Opening a chain and listing it (qemu-img info --backing-chain) must agree on
// how deep a chain may be: the top image plus MAX_BACKING_DEPTH backing files.
const temp = await makeTempDir('qcow2-backing-depth-');
afterAll(() => temp.remove());

/** The image `level` levels above the base (level 0), backed by level - 1. */
const level = (n: number) => temp.file(`level-${String(n).padStart(3, '0')}.qcow2`);
const deepest = level(MAX_BACKING_DEPTH); // MAX_BACKING_DEPTH backing files below it
const tooDeep = level(MAX_BACKING_DEPTH + 1);

beforeAll(async () => {
  // Tiny images (512-byte clusters, one sector): the whole chain is ~1 MiB.
  const tiny = { size: 512, clusterSize: 512 };
  await createQcow2(level(0), tiny);
  for (let n = 1; n <= MAX_BACKING_DEPTH + 1; n++) {
    await createQcow2(level(n), {
      ...tiny,
      backingFile: `level-${String(n - 1).padStart(3, '0')}.qcow2`,
      backingFormat: 'qcow2',
    });
  }
});

describe('backing chain depth', () => {
  it(`opens and lists a chain of ${MAX_BACKING_DEPTH} backing files below the top`, async () => {
    const image = await openQcow2(deepest, { backingPolicy: 'allow' });
    await image.close();
    const chain = await backingChainInfo(deepest, { backingPolicy: 'allow' });
    expect(chain).toHaveLength(MAX_BACKING_DEPTH + 1);
    expect(chain.at(-1)?.['backing-filename']).toBeUndefined();
  });

  it('refuses one more, with the same BACKING_LOOP, in both', async () => {
    const refusal = {
      code: 'BACKING_LOOP',
      path: level(1),
      message: `the backing chain is more than ${MAX_BACKING_DEPTH} backing files deep`,
    };
    await expect(openQcow2(tooDeep, { backingPolicy: 'allow' })).rejects.toMatchObject(refusal);
    await expect(backingChainInfo(tooDeep, { backingPolicy: 'allow' })).rejects.toMatchObject(
      refusal,
    );
  });
});
