import { FileDevice } from '@x/blockio';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyL2Entry,
  copyRefcount,
  decodeCompressedDescriptor,
  encodeCompressedEntry,
  encodeHeader,
  maxRefcount,
  REFCOUNT_SATURATED,
  readQcow2Metadata,
  readRefcount,
  readRefcountExact,
  readRefcountValue,
  writeRefcount,
} from '../src/index.js';
import { qemuImage, qemuImg } from './support/qemu-fixtures.js';

async function metadataOf(path: string) {
  const file = await FileDevice.open(path);
  try {
    return await readQcow2Metadata(file);
  } finally {
    await file.close();
  }
}

describe('readQcow2Metadata on images made by qemu-img', () => {
  const cases = [
    { name: 'v2', options: 'compat=0.10', version: 2, clusterSize: 65536, refcountBits: 16 },
    { name: 'v3', options: 'compat=1.1', version: 3, clusterSize: 65536, refcountBits: 16 },
    {
      name: 'c512-r2',
      options: 'cluster_size=512,refcount_bits=2',
      version: 3,
      clusterSize: 512,
      refcountBits: 2,
    },
    {
      name: 'c4k-r1',
      options: 'cluster_size=4k,refcount_bits=1',
      version: 3,
      clusterSize: 4096,
      refcountBits: 1,
      noSnapshot: true,
    },
    {
      name: 'c2m-r64',
      options: 'cluster_size=2M,refcount_bits=64',
      version: 3,
      clusterSize: 2 << 20,
      refcountBits: 64,
    },
    {
      name: 'extl2',
      options: 'extended_l2=on,cluster_size=128k',
      version: 3,
      clusterSize: 128 << 10,
      refcountBits: 16,
    },
    {
      name: 'zstd',
      options: 'compression_type=zstd',
      version: 3,
      clusterSize: 65536,
      refcountBits: 16,
    },
  ];
  for (const testCase of cases) {
    it(`agrees with qemu-img info for ${testCase.name}`, async () => {
      const image = await qemuImage(`format-${testCase.name}`, {
        size: '64M',
        options: testCase.options,
        commands: ['write -P 0x5a 0 3M'],
        snapshots: 'noSnapshot' in testCase ? [] : ['s1'],
      });
      const info = JSON.parse((await qemuImg('info', '--output=json', image)).stdout);
      const metadata = await metadataOf(image);
      expect(metadata.header.version).toBe(testCase.version);
      expect(metadata.geometry.clusterSize).toBe(info['cluster-size']);
      expect(metadata.geometry.clusterSize).toBe(testCase.clusterSize);
      expect(metadata.geometry.refcountBits).toBe(info['format-specific'].data['refcount-bits']);
      expect(metadata.geometry.refcountBits).toBe(testCase.refcountBits);
      expect(metadata.virtualSize).toBe(info['virtual-size']);
      expect(metadata.compressionType).toBe(info['format-specific'].data['compression-type']);
      expect(metadata.geometry.extendedL2).toBe(
        info['format-specific'].data['extended-l2'] ?? false,
      );
      const qemuSnapshots: Array<{ id: string; name: string }> = info.snapshots ?? [];
      expect(metadata.snapshots.map((s) => [s.id, s.name])).toEqual(
        qemuSnapshots.map((s) => [s.id, s.name]),
      );
      expect(metadata.problems).toEqual([]);
      if (testCase.version === 3) {
        // QEMU 7.2 writes the feature name table only when clusters are larger than 4 KiB.
        expect(metadata.extensions.featureNames.length).toBe(testCase.clusterSize > 4096 ? 8 : 0);
        expect(metadata.header.headerLength).toBe(112);
      }
    });
  }

  it('reads the backing file name and format', async () => {
    const base = await qemuImage('format-base', { size: '16M' });
    const overlay = await qemuImage('format-overlay', {
      size: '16M',
      options: `backing_file=${base},backing_fmt=qcow2`,
    });
    const metadata = await metadataOf(overlay);
    expect(metadata.backingFile).toBe(base);
    expect(metadata.backingFormat).toBe('qcow2');
  });

  it('round-trips the header bytes through decode and encode', async () => {
    const image = await qemuImage('format-v3', {
      size: '64M',
      options: 'compat=1.1',
      commands: ['write -P 0x5a 0 3M'],
      snapshots: ['s1'],
    });
    const metadata = await metadataOf(image);
    const file = await FileDevice.open(image);
    const original = await file.read(0, metadata.header.headerLength);
    await file.close();
    expect(Buffer.from(encodeHeader(metadata.header)).equals(original)).toBe(true);
  });
});

describe('table entries', () => {
  it('classifies standard L2 entries', () => {
    expect(classifyL2Entry(0, 0)).toBe('unallocated');
    expect(classifyL2Entry(0, 1)).toBe('zero-plain');
    expect(classifyL2Entry(0x80000000, 0x50000)).toBe('normal');
    expect(classifyL2Entry(0, 0x50001)).toBe('zero-alloc');
    expect(classifyL2Entry(0x40000000, 0x50000)).toBe('compressed');
  });

  it('decodes the compressed descriptor qemu wrote (64 KiB clusters, 1 sector)', () => {
    // Observed entry 0x4000000000050000: offset 0x50000, sector field 0 -> 1 sector.
    expect(decodeCompressedDescriptor(0x40000000, 0x50000, 16)).toEqual({
      offset: 0x50000,
      sectors: 1,
      length: 512,
    });
  });

  it('round-trips compressed descriptors for every cluster size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 9, max: 21 }),
        fc.nat(2 ** 40),
        fc.integer({ min: 1, max: 2 ** 21 }),
        (bits, offset, length) => {
          const clusterSize = 2 ** bits;
          const bytes = Math.min(length, clusterSize);
          const entry = encodeCompressedEntry(offset, bytes, bits);
          const hi = Number(entry >> 32n);
          const lo = Number(entry & 0xffffffffn);
          const decoded = decodeCompressedDescriptor(hi, lo, bits);
          expect(decoded.offset).toBe(offset);
          expect(decoded.length).toBeGreaterThanOrEqual(bytes);
          expect(decoded.length - bytes).toBeLessThan(512);
        },
      ),
    );
  });

  it('packs refcounts of every width without disturbing neighbours', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
        (order, seeds) => {
          const block = new Uint8Array(512);
          const max = Math.min(maxRefcount(order), 2 ** 40);
          const values = seeds.map((seed) => seed % (max + 1));
          const entries = Math.min(values.length, (512 * 8) / 2 ** order);
          for (let i = 0; i < entries; i++) writeRefcount(block, i, order, values[i] as number);
          for (let i = 0; i < entries; i++) expect(readRefcount(block, i, order)).toBe(values[i]);
        },
      ),
    );
  });

  it('64-bit refcounts are exact: all 64 bits read and written as bigints, never rounded', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.bigInt({ min: 2n ** 53n - 2n, max: 2n ** 53n + 2n }),
          fc.constantFrom(0x8000000000000001n, 2n ** 64n - 1n),
        ),
        fc.nat(63),
        (value, index) => {
          const block = new Uint8Array(512);
          writeRefcount(block, index, 6, value);
          expect(readRefcountExact(block, index, 6)).toBe(value);
          const exact = readRefcountValue(block, index, 6);
          if (value <= BigInt(Number.MAX_SAFE_INTEGER)) {
            expect(exact).toBe(Number(value));
            expect(readRefcount(block, index, 6)).toBe(Number(value));
          } else {
            expect(exact).toBe(value);
            // The number read saturates: above every count, so comparisons stay right.
            expect(readRefcount(block, index, 6)).toBe(REFCOUNT_SATURATED);
          }
          const copy = new Uint8Array(512);
          copyRefcount(block, index, copy, 63 - index, 6);
          expect(readRefcountExact(copy, 63 - index, 6)).toBe(value);
        },
      ),
    );
  });

  it('a refcount that cannot be written exactly is a typed error, not a rounded value', () => {
    const block = new Uint8Array(512);
    expect(() => writeRefcount(block, 0, 6, 2 ** 53 + 2)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => writeRefcount(block, 0, 6, REFCOUNT_SATURATED)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => writeRefcount(block, 0, 6, 2n ** 64n)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
    expect(() => writeRefcount(block, 0, 4, 0x10000)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
    expect(() => writeRefcount(block, 0, 4, -1n)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
    expect(block.every((byte) => byte === 0)).toBe(true);
    writeRefcount(block, 1, 4, 0xffffn);
    expect(readRefcount(block, 1, 4)).toBe(0xffff);
  });
});
