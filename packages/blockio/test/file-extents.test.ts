import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  allocatedBytes,
  makeTempDir,
  requirePeer,
  runPeerOk,
  seededBytes,
  type TempDir,
} from '@x/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  copy,
  type Extent,
  FileDevice,
  MemoryDevice,
  mapFileData,
  parseFilefrag,
  withOutputFile,
} from '../src/index.js';
import { distDirectory, GiB, KiB, MiB, writeSparseFile } from './support/files.js';

// FIEMAP needs a disk filesystem; /tmp is often tmpfs, so work inside the repository.
const diskScratchBase = join(distDirectory, '..', '.fixtures', 'scratch');

async function extentsOf(path: string, range?: { offset: number; length: number }) {
  const device = await FileDevice.open(path);
  try {
    const extents: Extent[] = [];
    for await (const extent of device.extents(range)) extents.push(extent);
    return extents;
  } finally {
    await device.close();
  }
}

describe('FIEMAP extent discovery on a real sparse file', () => {
  let scratch: TempDir;
  let path: string;
  const size = 6 * GiB + 5000;

  beforeAll(async () => {
    scratch = await makeTempDir('blockio-fiemap-', diskScratchBase);
    path = scratch.file('layout.img');
    await writeSparseFile(path, size, [
      { offset: 0, length: MiB, seed: 1 },
      { offset: 5 * MiB, length: 4 * KiB, seed: 2 },
      { offset: 4 * GiB + 64 * KiB, length: 128 * KiB, seed: 3 },
    ]);
    // Preallocated (unwritten) ranges read as zeros: the kernel reports them as such.
    await runPeerOk('fallocate', ['--offset', String(2 * MiB), '--length', String(3 * MiB), path]);
    await runPeerOk('fallocate', ['--offset', String(5 * GiB), '--length', String(MiB), path]);
    const handle = await FileDevice.open(path, { writable: true });
    await handle.write(5 * GiB + 512 * KiB, Buffer.alloc(4 * KiB, 0x5a));
    await handle.flush();
    await handle.close();
  });
  afterAll(async () => {
    await scratch.remove();
  });

  it('reports data, preallocated zeros and holes exactly, above 4 GiB too', async () => {
    expect((await stat(path)).size).toBe(size);
    expect(await extentsOf(path)).toEqual([
      { offset: 0, length: MiB, kind: 'data' },
      { offset: MiB, length: MiB, kind: 'unallocated' },
      { offset: 2 * MiB, length: 3 * MiB, kind: 'zero' },
      { offset: 5 * MiB, length: 4 * KiB, kind: 'data' },
      {
        offset: 5 * MiB + 4 * KiB,
        length: 4 * GiB + 64 * KiB - 5 * MiB - 4 * KiB,
        kind: 'unallocated',
      },
      { offset: 4 * GiB + 64 * KiB, length: 128 * KiB, kind: 'data' },
      { offset: 4 * GiB + 192 * KiB, length: GiB - 192 * KiB, kind: 'unallocated' },
      { offset: 5 * GiB, length: 512 * KiB, kind: 'zero' },
      { offset: 5 * GiB + 512 * KiB, length: 4 * KiB, kind: 'data' },
      { offset: 5 * GiB + 516 * KiB, length: 508 * KiB, kind: 'zero' },
      { offset: 5 * GiB + MiB, length: size - 5 * GiB - MiB, kind: 'unallocated' },
    ]);
  });

  it('clips extents to the range asked for and to the end of the file', async () => {
    expect(await extentsOf(path, { offset: 5 * GiB + 500 * KiB, length: 20 * KiB })).toEqual([
      { offset: 5 * GiB + 500 * KiB, length: 12 * KiB, kind: 'zero' },
      { offset: 5 * GiB + 512 * KiB, length: 4 * KiB, kind: 'data' },
      { offset: 5 * GiB + 516 * KiB, length: 4 * KiB, kind: 'zero' },
    ]);
    expect(await extentsOf(path, { offset: size - 10, length: 100 })).toEqual([
      { offset: size - 10, length: 10, kind: 'unallocated' },
    ]);
    expect(await extentsOf(path, { offset: size + 10, length: 100 })).toEqual([]);
  });

  it('copies the file sparsely: preallocated ranges become holes, data stays identical', async () => {
    const to = scratch.file('layout-copy.img');
    const source = await FileDevice.open(path);
    const result = await withOutputFile(to, { size }, (output) => copy(source, output.device));
    expect(result.bytesRead).toBe(MiB + 4 * KiB + 128 * KiB + 4 * KiB);
    const target = await FileDevice.open(to);
    expect(target.size).toBe(size);
    const copied: Extent[] = [];
    for await (const extent of target.extents()) copied.push(extent);
    const data = copied.filter((extent) => extent.kind !== 'unallocated');
    expect(data).toEqual([
      { offset: 0, length: MiB, kind: 'data' },
      { offset: 5 * MiB, length: 4 * KiB, kind: 'data' },
      { offset: 4 * GiB + 64 * KiB, length: 128 * KiB, kind: 'data' },
      { offset: 5 * GiB + 512 * KiB, length: 4 * KiB, kind: 'data' },
    ]);
    for (const extent of data) {
      const expected = await source.read(extent.offset, extent.length);
      expect((await target.read(extent.offset, extent.length)).equals(expected)).toBe(true);
    }
    // What the source reports as zero must read as zero there (it is what we skipped).
    expect((await source.read(2 * MiB, 3 * MiB)).every((byte) => byte === 0)).toBe(true);
    await source.close();
    await target.close();
    expect(await allocatedBytes(to)).toBeLessThanOrEqual(MiB + 136 * KiB + 64 * KiB);
  });

  it('counts a small unaligned write as data covering it', async () => {
    const small = scratch.file('small.img');
    await writeSparseFile(small, 10 * MiB, [{ offset: 100 * KiB + 17, length: 3000, seed: 4 }]);
    const data = (await extentsOf(small)).filter((extent) => extent.kind === 'data');
    expect(data).toHaveLength(1);
    const [extent] = data as [Extent];
    expect(extent.offset).toBeLessThanOrEqual(100 * KiB + 17);
    expect(extent.offset + extent.length).toBeGreaterThanOrEqual(100 * KiB + 17 + 3000);
    expect(extent.length).toBeLessThanOrEqual(64 * KiB);
  });
});

describe('the data map of a writable file', () => {
  let scratch: TempDir;
  afterEach(async () => {
    vi.unstubAllEnvs();
    await scratch?.remove();
  });

  /** Points BLOCKKIT_FILEFRAG at a wrapper of the real filefrag that counts its runs. */
  async function countFilefragRuns(): Promise<() => Promise<number>> {
    const filefrag = requirePeer('filefrag');
    const log = scratch.file('filefrag-runs.log');
    const wrapper = scratch.file('filefrag-counting');
    await writeFile(wrapper, `#!/bin/sh\necho run >> '${log}'\nexec '${filefrag}' "$@"\n`);
    await chmod(wrapper, 0o755);
    vi.stubEnv('BLOCKKIT_FILEFRAG', wrapper);
    return async () =>
      (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  }

  it('is made once for a copy of many ranges, and afresh after a write or truncate', async () => {
    scratch = await makeTempDir('blockio-writable-map-', diskScratchBase);
    const runs = await countFilefragRuns();
    const path = scratch.file('writable.img');
    const size = 8 * MiB;
    await writeSparseFile(path, size, [
      { offset: 0, length: 64 * KiB, seed: 1 },
      { offset: 3 * MiB, length: 256 * KiB, seed: 2 },
    ]);
    // 256 ranges of 4 KiB, one every 32 KiB: over data and over holes.
    const ranges = Array.from({ length: 256 }, (_, index) => ({
      offset: index * 32 * KiB,
      length: 4 * KiB,
    }));
    const source = await FileDevice.open(path, { writable: true });
    try {
      const copyRanges = async () => {
        const target = new MemoryDevice(size);
        const result = await copy(source, target, { ranges });
        for (const range of ranges) {
          const expected = await source.read(range.offset, range.length);
          expect(target.bytes.subarray(range.offset, range.offset + range.length)).toEqual(
            expected,
          );
        }
        return result;
      };

      const first = await copyRanges();
      expect(await runs()).toBe(1);
      expect(first.bytesRead).toBe(2 * 4 * KiB + 8 * 4 * KiB); // 2 ranges over the first run, 8 over the second

      // Data written into a hole through the device must be seen by the next copy.
      const written = seededBytes(64 * KiB, 3);
      await source.write(6 * MiB, written);
      const second = await copyRanges();
      expect(await runs()).toBe(2);
      expect(second.bytesRead).toBe(first.bytesRead + 2 * 4 * KiB);

      // Cutting the file back and growing it again leaves a hole where that data was.
      await source.truncate(6 * MiB);
      await source.truncate(size);
      const extents: Extent[] = [];
      for await (const extent of source.extents({ offset: 6 * MiB, length: 64 * KiB })) {
        extents.push(extent);
      }
      expect(extents).toEqual([{ offset: 6 * MiB, length: 64 * KiB, kind: 'unallocated' }]);
      expect(await runs()).toBe(3);
    } finally {
      await source.close();
    }
  });
});

describe('extent discovery fallback', () => {
  let scratch: TempDir;
  afterEach(async () => {
    vi.unstubAllEnvs();
    await scratch?.remove();
  });

  async function expectSparseCopyWithoutMap(directory: string) {
    scratch = await makeTempDir('blockio-fallback-', directory);
    const from = scratch.file('source.img');
    await writeSparseFile(from, 64 * MiB, [{ offset: 7 * MiB, length: MiB, seed: 5 }]);
    expect(await mapFileData(from, 64 * MiB)).toBeUndefined();
    expect(await extentsOf(from)).toEqual([{ offset: 0, length: 64 * MiB, kind: 'data' }]);
    const to = scratch.file('copy.img');
    const source = await FileDevice.open(from);
    const result = await withOutputFile(to, { size: source.size }, (output) =>
      copy(source, output.device),
    );
    const copied = await FileDevice.open(to);
    // Without a map every byte is read, and zero detection still keeps the copy sparse.
    expect(result.bytesRead).toBe(64 * MiB);
    expect(result.bytesWritten).toBe(MiB);
    expect((await copied.read(0, 64 * MiB)).equals(await source.read(0, 64 * MiB))).toBe(true);
    await copied.close();
    await source.close();
    expect(await allocatedBytes(to)).toBeLessThanOrEqual(MiB + 64 * KiB);
  }

  it('reads everything and detects zeros when filefrag is not installed', async () => {
    vi.stubEnv('BLOCKKIT_FILEFRAG', join(diskScratchBase, 'no-such-filefrag'));
    await expectSparseCopyWithoutMap(diskScratchBase);
  });

  it('reads everything and detects zeros where FIEMAP is unsupported (tmpfs)', async () => {
    const { stdout } = await runPeerOk('stat', ['-f', '-c', '%T', '/dev/shm']);
    expect(stdout.trim()).toBe('tmpfs');
    await expectSparseCopyWithoutMap('/dev/shm');
  });
});

describe('parseFilefrag', () => {
  const header = [
    'Filesystem type is: ef53',
    'File size of x is 10737418240 (10485760 blocks of 1024 bytes)',
    ' ext:     logical_offset:        physical_offset: length:   expected: flags:',
  ];

  it('reads rows with and without the expected column, and their flags', () => {
    const output = [
      ...header,
      '   0:      100..     103:   68035684..  68035687:      4:        100:',
      '   1:     1024..    3071:   68044800..  68046847:   2048:   68036608: unwritten',
      '   2:     3072..    4095:   68046848..  68047871:   1024:             unwritten',
      '   3:  5120000.. 5121023:   68075520..  68076543:   1024:   73163776: unknown_loc,delalloc,eof',
      'x: 2 extents found',
      '',
    ].join('\n');
    expect(parseFilefrag(output, 5121023 * 1024 + 1000)).toEqual([
      { offset: 100 * 1024, end: 104 * 1024, kind: 'data' },
      { offset: 1024 * 1024, end: 4096 * 1024, kind: 'zero' },
      { offset: 5120000 * 1024, end: 5121023 * 1024 + 1000, kind: 'data' },
    ]);
  });

  it('gives up (undefined) on anything it does not fully understand', () => {
    expect(parseFilefrag('x: FIBMAP/FIEMAP unsupported\n', 100)).toBeUndefined();
    expect(
      parseFilefrag([...header, '   0: garbage', 'x: 1 extent found'].join('\n'), 1e6),
    ).toBeUndefined();
    expect(parseFilefrag(header.join('\n'), 1e6)).toBeUndefined();
    const overlapping = [
      ...header,
      '   0:        0..      10:        100..       110:     11:             ',
      '   1:        5..      20:        200..       215:     16:        111: last,eof',
      'x: 2 extents found',
    ].join('\n');
    expect(parseFilefrag(overlapping, 1e6)).toBeUndefined();
  });

  it('accepts a file with no extents at all (entirely a hole)', () => {
    expect(parseFilefrag([...header, 'x: 0 extents found'].join('\n'), 1e6)).toEqual([]);
  });

  it('accepts what filefrag -e prints for a file that is one hole (no table at all)', () => {
    const output = [...header.slice(0, 2), '/tmp/hole.raw: 0 extents found', ''].join('\n');
    expect(parseFilefrag(output, 1e6)).toEqual([]);
  });
});
