import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeCluster, type FakeImage, generateFakeCluster } from '../src/fixture/index.js';
import { createInventory, listImages, loadInventory, recoverImage } from '../src/index.js';
import { pattern } from './support/one-disk-cluster.js';

const KiB = 1024;

const write = (tag: string, offset: number, length: number) => ({
  write: { offset, data: pattern(tag, offset, length) },
});

// Names needing every escape: `_`, `.`, `/`-free but `\`, `%`, spaces, `#`, `:`,
// a leading `.` and `_`, a leading DIR_, non-ASCII, and one over 255 bytes escaped.
const ODD_NAMES = [
  'vm_disk',
  '.hidden_image',
  '_leading',
  'DIR_looks_like_a_dir',
  'back\\slash % percent #hash: colon',
  'spaces and ünïcødé',
  `long_${'x'.repeat(240)}`,
];

const images: FakeImage[] = [
  // Thousands of 4 KiB objects (order 12): DIR_ splitting in every PG.
  {
    pool: 1,
    name: 'big',
    format: 2,
    order: 12,
    size: 4000 * 4 * KiB,
    operations: [
      write('A', 0, 4000 * 4 * KiB),
      { snapshot: 'one' },
      write('B', 100 * 4 * KiB, 50 * 4 * KiB),
      { discard: { offset: 200 * 4 * KiB, length: 10 * 4 * KiB } }, // heads deleted, clones kept
    ],
  },
  // The same image name in two pools and in a namespace, snapshots of different sizes.
  {
    pool: 1,
    name: 'twin',
    format: 2,
    order: 16,
    size: 1 << 20,
    operations: [
      write('C', 0, 300 * KiB),
      { snapshot: 'small' },
      { resize: 512 * KiB },
      write('D', 400 * KiB, 8 * KiB),
      { snapshot: 'shrunk' },
      { resize: 2 << 20 },
      write('E', (1 << 20) + 4 * KiB, 64 * KiB),
      write('F', 70 * KiB, 4 * KiB), // an object created after the snapshots
    ],
  },
  {
    pool: 2,
    name: 'twin',
    format: 2,
    order: 16,
    size: 256 * KiB,
    operations: [write('G', 0, 100 * KiB)],
  },
  {
    pool: 1,
    namespace: 'tenant a',
    name: 'twin',
    format: 2,
    order: 16,
    size: 256 * KiB,
    operations: [write('H', 64 * KiB, 70 * KiB), { snapshot: 'ns-snap' }, write('I', 0, 4 * KiB)],
  },
  {
    pool: 1,
    name: 'old_v1',
    format: 1,
    order: 16,
    size: 512 * KiB,
    operations: [
      write('J', 0, 200 * KiB),
      { snapshot: 'v1 snap' },
      write('K', 128 * KiB, 300 * KiB),
    ],
  },
  ...ODD_NAMES.map((name, n) => ({
    pool: 1,
    name,
    format: 2 as const,
    order: 16,
    size: 192 * KiB,
    operations: [
      write(String.fromCharCode(0x4c + n), n * KiB, 70 * KiB),
      { snapshot: `s_${n}.x` },
      write('Z', 0, 512),
    ],
  })),
];

let temp: TempDir;
let cluster: FakeCluster;
let workdir: string;

beforeAll(async () => {
  temp = await makeTempDir('rbd-generated-');
  cluster = await generateFakeCluster({
    directory: temp.file('cluster'),
    pools: [
      { id: 1, name: 'rbd', pgNum: 8 },
      { id: 2, name: 'backup', pgNum: 4 },
    ],
    osds: 3,
    images,
    // osd.2 stopped after the first image's snapshot: older epochs, older objects.
    staleAfter: { 2: 2 },
    splitThreshold: 64,
    xattrs: 'setfattr',
  });
  workdir = temp.file('work');
  // Two OSDs on one host: two lines with the same host.
  const summary = await createInventory(
    cluster.osds.map((dataPath) => ({ host: 'local', dataPath })),
    { workdir },
  );
  expect(summary.osds.map((osd) => osd.status)).toEqual(['scanned', 'scanned', 'scanned']);
}, 600_000);

afterAll(async () => {
  await temp?.remove();
});

describe('a generated FileStore cluster: scale, escapes, namespaces, pools, stale replicas', () => {
  it('split DIR_ levels and long names are read', async () => {
    const inventory = await loadInventory(workdir);
    const osd = inventory.osds[0];
    expect(osd?.objects.some((object) => object.path.includes('/DIR_'))).toBe(true);
    expect(osd?.objects.some((object) => object.path.endsWith('_long'))).toBe(true);
    expect(osd?.unparsed).toEqual([]);
    expect(osd?.objects.length).toBeGreaterThan(4000);
  });

  it('lists every image in every pool and namespace, never mixing the twins', async () => {
    const listed = (await listImages({ workdir })).map(
      (image) => `${image.pool.name}/${image.namespace ? `${image.namespace}/` : ''}${image.name}`,
    );
    expect(listed.sort()).toEqual(
      [...cluster.expected.keys()].filter((key) => !key.includes('@')).sort(),
    );
  });

  it('every head and snapshot equals what the simulated client wrote', async () => {
    let n = 0;
    for (const [label, bytes] of cluster.expected) {
      const output = temp.file(`out-${n++}.raw`);
      const report = await recoverImage(label, output, { workdir });
      expect(report.complete, label).toBe(true);
      const rebuilt = await readFile(output);
      expect(rebuilt.byteLength, label).toBe(bytes.byteLength);
      expect(rebuilt.equals(bytes), label).toBe(true);
    }
  }, 300_000);

  it('the stale OSD alone gives what it held when it stopped', async () => {
    const stale = temp.file('stale');
    await createInventory([{ host: 'local', dataPath: cluster.osds[2] as string }], {
      workdir: stale,
    });
    const expected = cluster.staleExpected.get(2);
    const output = temp.file('stale.raw');
    // osd.2 holds PGs 2,3,4 (…) of pool 1: the image is partial there, the rest zeros.
    const report = await recoverImage('rbd/big', output, { workdir: stale });
    expect(report.states[0]?.size).toBe(4000 * 4 * KiB);
    const rebuilt = await readFile(output);
    const bigExpected = expected?.get('rbd/big') as Buffer;
    // Every object it holds matches the pre-stop content.
    const objectSize = 4 * KiB;
    let compared = 0;
    for (let index = 0; index < 4000; index++) {
      const region = rebuilt.subarray(index * objectSize, (index + 1) * objectSize);
      if (region.every((byte) => byte === 0)) continue;
      expect(
        region.equals(bigExpected.subarray(index * objectSize, (index + 1) * objectSize)),
      ).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('--all-snapshots as QCOW2 handles snapshots of different sizes', async () => {
    const output = join(temp.path, 'twin.qcow2');
    const report = await recoverImage('rbd/twin', output, {
      workdir,
      allSnapshots: true,
      format: 'qcow2',
    });
    expect(report.states.map((state) => [state.label, state.size])).toEqual([
      ['small', 1 << 20],
      ['shrunk', 512 * KiB],
      ['head', 2 << 20],
    ]);
  });
});
