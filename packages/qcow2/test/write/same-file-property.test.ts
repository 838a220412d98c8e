import { fuzzParameters, makeTempDir, runPeer, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQcow2, type Qcow2Image } from '../../src/index.js';
import { qemuImg } from '../support/qemu-fixtures.js';
import { expectClean, expectSameImageFile, firstDifference, guestBytes } from './support.js';

/**
 * Random requests (writes, zero writes with and without unmap, whole-cluster
 * discards, compressed clusters) made through our writer and through qemu-io give
 * the same image file, byte for byte: clusters, tables and refcounts in the same
 * places. The one exception is where QEMU damages its own image (its compressed
 * packing goes on into a freed cluster that a data cluster or table took since;
 * qemu-io reports the overlap or qemu-img check the refcounts): there ours must be
 * clean and hold the requested bytes.
 */
type Request =
  | { kind: 'write'; pattern: number; at: number; length: number }
  | { kind: 'zero' | 'zero-unmap' | 'discard'; at: number; length: number }
  | { kind: 'compressed'; pattern: number; cluster: number };

const SIZE = 8 << 20;
/** Requests are placed in units of 2 KiB. */
const UNIT = 2048;

const requests = fc.array(
  fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        pattern: fc.integer({ min: 1, max: 255 }),
        at: fc.integer({ min: 0, max: SIZE / UNIT - 1 }),
        length: fc.integer({ min: 1, max: 300 }),
      }),
      weight: 2,
    },
    fc.record({
      kind: fc.constantFrom('zero' as const, 'zero-unmap' as const, 'discard' as const),
      at: fc.integer({ min: 0, max: SIZE / UNIT - 1 }),
      length: fc.integer({ min: 1, max: 300 }),
    }),
    {
      arbitrary: fc.record({
        kind: fc.constant('compressed' as const),
        pattern: fc.integer({ min: 1, max: 255 }),
        cluster: fc.integer({ min: 0, max: 31 }),
      }),
      weight: 2,
    },
  ),
  { minLength: 1, maxLength: 14 },
);

const creates: string[][] = [
  [],
  ['-o', 'cluster_size=512'],
  ['-o', 'cluster_size=4096,refcount_bits=1'],
  ['-o', 'compat=0.10'],
  ['-o', 'lazy_refcounts=on'],
  ['-o', 'extended_l2=on'],
];

/** Makes the request on our image and the model; the qemu-io command for it, if any. */
async function request(
  image: Qcow2Image,
  model: Buffer,
  r: Request,
  clusterSize: number,
): Promise<string | undefined> {
  if (r.kind === 'compressed') {
    // Spread over the disk, one cluster each; only where the image holds no cluster
    // (qemu-io fails the request otherwise).
    const offset = (r.cluster * 256 * 1024) % SIZE;
    const mapping = await image.mapGuestRange(offset, clusterSize);
    if (mapping.some((run) => run.type !== 'unallocated' && run.type !== 'zero-plain')) return;
    await image.writeCompressed(offset, Buffer.alloc(clusterSize, r.pattern));
    model.fill(r.pattern, offset, offset + clusterSize);
    return `write -c -P ${r.pattern} ${offset} ${clusterSize}`;
  }
  let at = r.at * UNIT;
  let length = Math.min(r.length * UNIT, SIZE - at);
  if (r.kind === 'write') {
    await image.write(at, Buffer.alloc(length, r.pattern));
    model.fill(r.pattern, at, at + length);
    return `write -P ${r.pattern} ${at} ${length}`;
  }
  if (r.kind === 'discard') {
    // Whole clusters: ours zeroes the parts of clusters a discard covers (so it reads
    // as zeros), QEMU leaves them.
    const end = Math.floor((at + length) / clusterSize) * clusterSize;
    at = Math.ceil(at / clusterSize) * clusterSize;
    if (end <= at) return;
    length = end - at;
    await image.discard(at, length);
    model.fill(0, at, at + length);
    return `discard ${at} ${length}`;
  }
  const unmap = r.kind === 'zero-unmap';
  await image.writeZeroes(at, length, { unmap });
  model.fill(0, at, at + length);
  return `write -z${unmap ? ' -u' : ''} ${at} ${length}`;
}

describe('write path: random requests, the same file as qemu-io', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-same-file-');
  });
  afterAll(() => dir.remove());

  it('every geometry, compressed clusters among the requests', async () => {
    let run = 0;
    let qemuDamaged = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...creates), requests, async (create, list) => {
        const theirs = dir.file(`theirs-${run}.qcow2`);
        const ours = dir.file(`ours-${run++}.qcow2`);
        await qemuImg('create', '-q', '-f', 'qcow2', ...create, theirs, String(SIZE));
        await qemuImg('create', '-q', '-f', 'qcow2', ...create, ours, String(SIZE));
        const model = Buffer.alloc(SIZE);
        const commands: string[] = [];
        const image = await openQcow2(ours, { writable: true });
        try {
          const { clusterSize } = image.geometry;
          for (const r of list) {
            const command = await request(image, model, r, clusterSize);
            if (command !== undefined) commands.push(command);
          }
        } finally {
          await image.close();
        }
        // qemu-io with no -c reads commands from standard input: with no requests left
        // (all skipped), a flush.
        const io = await runPeer('qemu-io', [
          '-f',
          'qcow2',
          ...commands.flatMap((command) => ['-c', command]),
          ...(commands.length === 0 ? ['-c', 'flush'] : []),
          theirs,
        ]);
        const check = await runPeer('qemu-img', ['check', theirs]);
        if (/corrupt|failed/i.test(io.stdout + io.stderr) || check.code !== 0) {
          qemuDamaged++;
          await expectClean(ours);
        } else {
          await expectSameImageFile(ours, theirs);
        }
        expect(firstDifference(await guestBytes(ours, `${ours}.raw`), model)).toBe(-1);
      }),
      {
        ...fuzzParameters('SAME_FILE_RUNS', 40),
        examples: [
          // A compressed cluster freed, not taken by anything, packed on: as QEMU packs.
          [
            ['-o', 'cluster_size=512'],
            [
              { kind: 'compressed', pattern: 1, cluster: 0 },
              { kind: 'zero', at: 0, length: 1 },
              { kind: 'compressed', pattern: 1, cluster: 0 },
            ],
          ],
          // Freed, then taken by a data cluster: QEMU packs into the data cluster.
          [
            ['-o', 'cluster_size=4096'],
            [
              { kind: 'compressed', pattern: 1, cluster: 0 },
              { kind: 'zero', at: 0, length: 2 },
              { kind: 'write', pattern: 2, at: 2, length: 1 },
              { kind: 'compressed', pattern: 3, cluster: 0 },
              { kind: 'write', pattern: 4, at: 2, length: 1 },
            ],
          ],
          // Freed by a write over it, then taken by an L2 table: QEMU packs into the table.
          [
            ['-o', 'cluster_size=512'],
            [
              { kind: 'compressed', pattern: 1, cluster: 15 },
              { kind: 'write', pattern: 1, at: 1900, length: 40 },
              { kind: 'compressed', pattern: 1, cluster: 0 },
              { kind: 'write', pattern: 1, at: 0, length: 1 },
            ],
          ],
        ],
      },
    );
    // The examples alone make QEMU damage its image twice.
    expect(qemuDamaged).toBeGreaterThanOrEqual(2);
  }, 180_000);
});
