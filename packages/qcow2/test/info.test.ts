import { runPeerOk } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { backingChainInfo, type ImageInfo, imageInfo } from '../src/index.js';
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

const QEMU_KEYS = [
  'virtual-size',
  'filename',
  'cluster-size',
  'format',
  'actual-size',
  'dirty-flag',
  'encrypted',
  'backing-filename',
  'full-backing-filename',
  'backing-filename-format',
  'snapshots',
  'format-specific',
] as const;

/** Our info restricted to the keys qemu-img prints. */
function overlapping(info: ImageInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of QEMU_KEYS) if (info[key] !== undefined) out[key] = info[key];
  return out;
}

async function qemuInfo(path: string, chain = false) {
  const args = ['info', '--output=json', ...(chain ? ['--backing-chain'] : []), path];
  return JSON.parse((await runPeerOk('qemu-img', args)).stdout);
}

async function expectSameInfo(path: string) {
  const ours = await imageInfo(path);
  expect(overlapping(ours)).toEqual(await qemuInfo(path));
  return ours;
}

describe('info agrees with qemu-img info --output=json on the keys both print', () => {
  const cases: Array<[string, string, string[]]> = [
    ['read-v2', 'compat=0.10', MIXED_WRITES],
    ['read-v3', 'compat=1.1', MIXED_WRITES],
    ['read-c512', 'cluster_size=512', MIXED_WRITES],
    ['read-refcount64', 'refcount_bits=64', MIXED_WRITES],
    ['read-zstd', 'compression_type=zstd', MIXED_WRITES],
    ['read-extl2', 'extended_l2=on,cluster_size=128k', MIXED_WRITES],
    ['read-prealloc-metadata', 'preallocation=metadata', PLAIN_WRITES],
  ];
  for (const [name, options, commands] of cases) {
    it(name, async () => {
      await expectSameInfo(await qemuImage(name, { size: '64M', options, commands }));
    });
  }

  it('snapshots, dirty bit and lazy refcounts, external data files', async () => {
    const withSnapshots = await expectSameInfo(await snapshotImage());
    expect(withSnapshots.snapshots?.map((s) => s.name)).toEqual(['s1', 's2']);
    const dirty = await expectSameInfo(await dirtyImage());
    expect(dirty['dirty-flag']).toBe(true);
    expect(dirty.features?.incompatible).toEqual(['dirty bit']);
    expect(dirty.features?.compatible).toEqual(['lazy refcounts']);
    for (const raw of [true, false]) {
      const path = await dataFileImage(raw);
      const ours = await imageInfo(path);
      const qemu = await runPeerOk('qemu-img', ['info', '--output=json', 'image.qcow2'], {
        cwd: path.replace(/\/image\.qcow2$/, ''),
      });
      expect(overlapping({ ...ours, filename: 'image.qcow2' })).toEqual(JSON.parse(qemu.stdout));
    }
  });

  it('allocation and fragmentation figures of a compressed image', async () => {
    const ours = await imageInfo(await convertedImage('converted-zlib', { compress: true }));
    const allocation = ours.allocation;
    expect(allocation?.['compressed-clusters']).toBeGreaterThan(0);
    expect(allocation?.['data-bytes']).toBeGreaterThan(0);
    expect(
      (allocation?.['data-bytes'] ?? 0) +
        (allocation?.['compressed-bytes'] ?? 0) +
        (allocation?.['zero-bytes'] ?? 0) +
        (allocation?.['unallocated-bytes'] ?? 0),
    ).toBe(ours['virtual-size']);
    expect(ours['header-extensions']?.map((e) => e.name)).toEqual(['feature name table']);
  });

  it('--backing-chain over raw and qcow2 bases', async () => {
    for (const base of ['raw', 'qcow2'] as const) {
      const top = await backingChain(base);
      const ours = await backingChainInfo(top, { backingPolicy: 'allow' });
      expect(ours.map(overlapping)).toEqual(await qemuInfo(top, true));
      expect(ours.map((info) => info.format)).toEqual(['qcow2', 'qcow2', base]);
    }
  });

  it('refuses to follow the chain under the default deny policy', async () => {
    await expect(backingChainInfo(await backingChain('raw'))).rejects.toMatchObject({
      code: 'BACKING_DENIED',
    });
  });
});
