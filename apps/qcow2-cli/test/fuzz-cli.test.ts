import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { FUZZ_SEED, makeTempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2, qemuImage } from './support/cli.js';

/**
 * The bin on a handful of randomly damaged images (fixed seed): documented exit
 * codes only, one-line errors without stack traces, no partial output, the input
 * untouched. The library's own fuzz tests (packages/qcow2/test/fuzz.test.ts) run
 * many more cases in-process; this checks the CLI's error path end to end.
 */
const temp = await makeTempDir('qcow2-cli-fuzz-');
afterAll(() => temp.remove());

let pristine: Buffer;
beforeAll(async () => {
  const path = await qemuImage(
    'fuzz-cli',
    '8M',
    ['write -P 0x21 0 512k', 'write -c -P 0x22 2M 64k', 'write -z 3M 64k'],
    'cluster_size=4k',
  );
  pristine = await readFile(path);
});

/** Header, L1 table, first L2 table, refcount table and first refcount block. */
function regions(image: Buffer): { offset: number; length: number }[] {
  const clusterSize = 2 ** image.readUInt32BE(20);
  const l1 = Number(image.readBigUInt64BE(40));
  const refcountTable = Number(image.readBigUInt64BE(48));
  const l2 = Number(image.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  const block = Number(image.readBigUInt64BE(refcountTable));
  return [
    { offset: 0, length: 104 },
    { offset: l1, length: 8 * image.readUInt32BE(36) },
    { offset: l2, length: clusterSize },
    { offset: refcountTable, length: clusterSize },
    { offset: block, length: clusterSize },
  ];
}

type Damage = { region: number; at: number; bytes: Uint8Array } | { truncate: number };

const damageArbitrary: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({
    region: fc.nat(),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ truncate: fc.nat() }),
);

function damaged(damage: Damage): Buffer {
  const bytes = Buffer.from(pristine);
  if ('truncate' in damage) return bytes.subarray(0, damage.truncate % bytes.length);
  const all = regions(pristine);
  const region = all[damage.region % all.length] as { offset: number; length: number };
  bytes.set(damage.bytes, region.offset + (damage.at % region.length));
  return bytes;
}

const CHECK_EXIT_CODES = [0, 1, 2, 3, 4, 5, 6, 8];

function expectCleanFailure(
  run: { code: number; stderr: string },
  codes: number[],
  image?: string,
) {
  expect(codes).toContain(run.code);
  // A failure names the image (check's findings codes 1-6 are reports, not failures).
  if (image !== undefined && run.code !== 0) expect(run.stderr).toContain(image);
  // No stack frames: errors are one line naming the file and structure.
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).not.toMatch(/TypeError|RangeError|ReferenceError/);
}

describe('the qcow2 bin on randomly damaged images', () => {
  const cases = fc.sample(damageArbitrary, { seed: FUZZ_SEED, numRuns: 6 });
  for (const [index, what] of cases.entries()) {
    // The case's damage is in the test name (fast-check's own JSON of it).
    it(`case ${index} ${fc.stringify(what)}: check, info, map, convert`, async () => {
      const bytes = damaged(what);
      const image = temp.file(`damaged-${index}.qcow2`);
      await writeFile(image, bytes);
      expectCleanFailure(await qcow2('check', image), CHECK_EXIT_CODES);
      expectCleanFailure(await qcow2('info', image), [0, 1], image);
      expectCleanFailure(await qcow2('map', image), [0, 1], image);
      const output = temp.file(`damaged-${index}.raw`);
      const convert = await qcow2('convert', '-f', 'qcow2', '-O', 'raw', image, output);
      expectCleanFailure(convert, [0, 1], image);
      if (convert.code !== 0) expect(existsSync(output)).toBe(false);
      expect(existsSync(`${output}.partial`)).toBe(false);
      expect((await readFile(image)).equals(bytes)).toBe(true);
    });
  }
});
