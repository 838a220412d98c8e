import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { FUZZ_SEED, makeTempDir, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSmallFixtures, readLayout } from '../../../packages/e2image/test/support/damage.js';
import { run } from './support/run-cli.js';

/**
 * x-e2image -r on a handful of randomly damaged filesystems (fixed seed): exit 0
 * or 1, one-line errors without stack traces, no output or .partial left on
 * failure, the source untouched. The library's fuzz test
 * (packages/e2image/test/fuzz.test.ts) runs many more cases in-process.
 */
let temp: TempDir;
let pristine: Buffer;
let regions: { offset: number; length: number }[];
beforeAll(async () => {
  temp = await makeTempDir('e2image-cli-fuzz-');
  const { ext4 } = await buildSmallFixtures();
  pristine = await readFile(ext4);
  const layout = await readLayout(ext4);
  const block = (number: number) => ({
    offset: number * layout.blockSize,
    length: layout.blockSize,
  });
  regions = [
    { offset: 1024, length: 1024 }, // superblock
    block(2), // group descriptors (1 KiB blocks)
    { offset: layout.inodeTable * layout.blockSize, length: 40 * 256 }, // used inodes
    block(layout.dirBlock),
    block(layout.sparseLeaf),
    block(layout.blockBitmap),
  ];
});
afterAll(() => temp?.remove());

type Damage = { region: number; at: number; bytes: Uint8Array } | { truncate: number };

const damageArbitrary: fc.Arbitrary<Damage> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      region: fc.nat(),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ truncate: fc.nat() }) },
);

function damaged(damage: Damage): Buffer {
  const bytes = Buffer.from(pristine);
  if ('truncate' in damage) return bytes.subarray(0, damage.truncate % bytes.length);
  const region = regions[damage.region % regions.length] as { offset: number; length: number };
  bytes.set(damage.bytes, region.offset + (damage.at % region.length));
  return bytes;
}

describe('x-e2image -r on randomly damaged filesystems', () => {
  const cases = fc.sample(damageArbitrary, { seed: FUZZ_SEED, numRuns: 8 });
  for (const [index, what] of cases.entries()) {
    it(`case ${index} ${fc.stringify(what)}`, async () => {
      const bytes = damaged(what);
      const image = temp.file(`damaged-${index}.img`);
      const output = temp.file(`damaged-${index}.raw`);
      await writeFile(image, bytes);
      const result = await run(['-r', image, output]);
      expect([0, 1]).toContain(result.code);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.stderr).not.toMatch(/TypeError|RangeError|ReferenceError/);
      if (result.code === 1) {
        expect(result.stderr).toContain(image);
        expect(result.stderr).toMatch(/\[[A-Z_]+\]$/m);
        expect(existsSync(output)).toBe(false);
      }
      expect(existsSync(`${output}.partial`)).toBe(false);
      expect((await readFile(image)).equals(bytes)).toBe(true);
    });
  }
});
