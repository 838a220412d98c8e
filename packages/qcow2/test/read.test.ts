import { afterAll, describe, expect, it } from 'vitest';
import { openQcow2, type Qcow2Image } from '../src/index.js';
import { qemuImage } from './support/qemu-fixtures.js';
import { deviceHash, qemuRawHash } from './support/raw-compare.js';
import {
  backingChain,
  convertedImage,
  dataFileImage,
  dirtyImage,
  MIXED_WRITES,
  PLAIN_WRITES,
  snapshotImage,
} from './support/read-fixtures.js';

const opened: Qcow2Image[] = [];
afterAll(async () => {
  for (const image of opened) await image.close();
});

async function open(path: string, options: Parameters<typeof openQcow2>[1] = {}) {
  const image = await openQcow2(path, { backingPolicy: 'allow', ...options });
  opened.push(image);
  return image;
}

/** Every byte through our BlockDevice equals qemu-img convert -O raw. */
async function expectSameAsQemu(path: string, chunk?: number, extra: string[] = []) {
  const image = await open(path);
  expect(await deviceHash(image, chunk)).toBe(await qemuRawHash(path, extra));
  return image;
}

describe('reads equal qemu-img convert -O raw', () => {
  const single: Array<[string, string, string[]?]> = [
    ['v2', 'compat=0.10'],
    ['v3', 'compat=1.1'],
    ['c512', 'cluster_size=512'],
    ['c4k', 'cluster_size=4k'],
    ['c64k', 'cluster_size=64k'],
    ['c2m', 'cluster_size=2M', [...PLAIN_WRITES, 'write -c -P 0x11 12M 2M']],
    ['refcount1', 'refcount_bits=1'],
    ['refcount16', 'refcount_bits=16'],
    ['refcount64', 'refcount_bits=64'],
    ['zstd', 'compression_type=zstd'],
    ['prealloc-metadata', 'preallocation=metadata', PLAIN_WRITES],
    ['prealloc-full', 'preallocation=full', PLAIN_WRITES],
    ['extl2', 'extended_l2=on,cluster_size=128k'],
  ];
  for (const [name, options, commands = MIXED_WRITES] of single) {
    it(`${name} (${options})`, async () => {
      const path = await qemuImage(`read-${name}`, {
        size: '64M',
        options,
        commands,
      });
      await expectSameAsQemu(path);
    });
  }

  it('c512 read in odd-sized pieces that straddle clusters and L2 tables', async () => {
    const path = await qemuImage('read-c512', {
      size: '64M',
      options: 'cluster_size=512',
      commands: MIXED_WRITES,
    });
    await expectSameAsQemu(path, 12345 * 7);
  });

  it('extended L2 subclusters: partial writes, zero and discarded subclusters', async () => {
    const path = await qemuImage('read-extl2-subclusters', {
      size: '16M',
      options: 'extended_l2=on,cluster_size=128k',
      commands: [
        'write -P 1 4k 4k',
        'write -z 8k 4k',
        'discard 0 4k',
        'write -P 2 300k 20k',
        'write -c -P 3 1M 128k',
      ],
    });
    await expectSameAsQemu(path, 4096 * 3);
  });

  it('deflate-compressed image (convert -c)', async () => {
    const path = await convertedImage('converted-zlib', { compress: true });
    await expectSameAsQemu(path);
    await expectSameAsQemu(path, 5000);
  });

  it('zstd-compressed image (convert -c -o compression_type=zstd)', async () => {
    const path = await convertedImage('converted-zstd', {
      compress: true,
      createOptions: 'compression_type=zstd',
    });
    await expectSameAsQemu(path);
  });

  it('compressed 512-byte and 2 MiB clusters', async () => {
    for (const clusterSize of ['512', '2M']) {
      const path = await convertedImage(`converted-zlib-${clusterSize}`, {
        compress: true,
        createOptions: `cluster_size=${clusterSize}`,
      });
      await expectSameAsQemu(path);
    }
  });

  it('backing chain of three over a raw base', async () => {
    await expectSameAsQemu(await backingChain('raw'));
  });

  it('backing chain of three qcow2 images', async () => {
    await expectSameAsQemu(await backingChain('qcow2'), 3 * 65536 + 17);
  });

  it('lazy refcounts with the dirty bit set', async () => {
    const image = await expectSameAsQemu(await dirtyImage());
    expect(image.metadata.header.incompatibleFeatures & 1n).toBe(1n);
  });

  it('external data file, raw and not raw', async () => {
    for (const raw of [true, false]) {
      const image = await expectSameAsQemu(await dataFileImage(raw));
      expect(image.ownsDataFile).toBe(true);
    }
  });

  it('internal snapshots: the active state and each snapshot view', async () => {
    const path = await snapshotImage();
    await expectSameAsQemu(path);
    for (const name of ['s1', 's2']) {
      const view = await open(path, { snapshot: name });
      expect(view.snapshot?.name).toBe(name);
      expect(await deviceHash(view)).toBe(await qemuRawHash(path, ['-l', `snapshot.name=${name}`]));
    }
    const byId = await open(path, { snapshot: '1' });
    expect(byId.snapshot?.name).toBe('s1');
  });
});
