import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runPeerOk } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { type MapEntry, mapEntries, mapImage, openQcow2 } from '../src/index.js';
import { qemuImage } from './support/qemu-fixtures.js';
import {
  backingChain,
  convertedImage,
  dataFileImage,
  dirtyImage,
  MIXED_WRITES,
  PLAIN_WRITES,
  snapshotImage,
} from './support/read-fixtures.js';

interface QemuMapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

async function qemuMap(path: string, extra: string[] = []): Promise<QemuMapEntry[]> {
  const { stdout } = await runPeerOk('qemu-img', ['map', '--output=json', ...extra, path], {
    cwd: dirname(path),
  });
  return (JSON.parse(stdout) as QemuMapEntry[]).map(
    ({ start, length, depth, present, zero, data, offset }) =>
      offset === undefined
        ? { start, length, depth, present, zero, data }
        : { start, length, depth, present, zero, data, offset },
  );
}

function overlapping(entries: MapEntry[]): QemuMapEntry[] {
  return entries.map(({ start, length, depth, present, zero, data, offset }) =>
    offset === undefined
      ? { start, length, depth, present, zero, data }
      : { start, length, depth, present, zero, data, offset },
  );
}

/**
 * Where QEMU asks the file system (metadata-preallocated images, which qemu-img also
 * detects when partly written big clusters leave the file sparser than its refcounts),
 * its SEEK_DATA probe calls an unwritten (fallocated) extent data only while its pages
 * are in the page cache: the same file maps differently depending on what read it
 * last. We count unwritten extents as data (they may hold dirty pages); reading the
 * file first puts qemu-img in the same state on every run.
 */
async function warmPageCache(path: string): Promise<void> {
  await readFile(path);
}

async function expectSameMap(path: string) {
  await warmPageCache(path);
  const image = await openQcow2(path, { backingPolicy: 'allow' });
  try {
    const ours = await mapImage(image);
    expect(overlapping(ours)).toEqual(await qemuMap(path));
    return ours;
  } finally {
    await image.close();
  }
}

describe('map agrees with qemu-img map --output=json', () => {
  const cases: Array<[string, string, string[]]> = [
    ['read-v2', 'compat=0.10', MIXED_WRITES],
    ['read-v3', 'compat=1.1', MIXED_WRITES],
    ['read-c512', 'cluster_size=512', MIXED_WRITES],
    ['read-c2m', 'cluster_size=2M', [...PLAIN_WRITES, 'write -c -P 0x11 12M 2M']],
    ['read-refcount1', 'refcount_bits=1', MIXED_WRITES],
    ['read-prealloc-metadata', 'preallocation=metadata', PLAIN_WRITES],
    ['read-prealloc-full', 'preallocation=full', PLAIN_WRITES],
    ['read-extl2', 'extended_l2=on,cluster_size=128k', MIXED_WRITES],
  ];
  for (const [name, options, commands] of cases) {
    it(name, async () => {
      await expectSameMap(await qemuImage(name, { size: '64M', options, commands }));
    });
  }

  it('extended L2 subclusters', async () => {
    await expectSameMap(
      await qemuImage('read-extl2-subclusters', {
        size: '16M',
        options: 'extended_l2=on,cluster_size=128k',
        commands: [
          'write -P 1 4k 4k',
          'write -z 8k 4k',
          'discard 0 4k',
          'write -P 2 300k 20k',
          'write -c -P 3 1M 128k',
        ],
      }),
    );
  });

  it('compressed images mark their compressed runs', async () => {
    const ours = await expectSameMap(await convertedImage('converted-zlib', { compress: true }));
    expect(ours.some((entry) => entry.compressed && entry.data && entry.offset === undefined)).toBe(
      true,
    );
    await expectSameMap(
      await convertedImage('converted-zstd', {
        compress: true,
        createOptions: 'compression_type=zstd',
      }),
    );
  });

  it('backing chains of three (raw and qcow2 base): depth and present', async () => {
    const ours = await expectSameMap(await backingChain('raw'));
    expect(new Set(ours.map((entry) => entry.depth))).toEqual(new Set([0, 1, 2]));
    expect(ours.find((entry) => entry.depth === 2 && entry.data)?.filename).toMatch(/base\.raw$/);
    await expectSameMap(await backingChain('qcow2'));
  });

  it('external data files, snapshots, dirty images', async () => {
    const raw = await expectSameMap(await dataFileImage(true));
    expect(raw[0]?.filename).toMatch(/image\.data$/);
    await expectSameMap(await dataFileImage(false));
    await expectSameMap(await snapshotImage());
    await expectSameMap(await dirtyImage());
  });

  it('a range, given the same way to mapEntries and mapImage (--start-offset, --max-length)', async () => {
    const path = await qemuImage('read-v3', {
      size: '64M',
      options: 'compat=1.1',
      commands: MIXED_WRITES,
    });
    const range = { offset: 3 * 1024 * 1024 + 512, length: 10 * 1024 * 1024 };
    const theirs = await qemuMap(path, [
      `--start-offset=${range.offset}`,
      `--max-length=${range.length}`,
    ]);
    const image = await openQcow2(path);
    try {
      const streamed: MapEntry[] = [];
      for await (const entry of mapEntries(image, { range })) streamed.push(entry);
      expect(overlapping(streamed)).toEqual(theirs);
      expect(await mapImage(image, { range })).toEqual(streamed);
    } finally {
      await image.close();
    }
  });
});
