import { mkdir, stat, writeFile } from 'node:fs/promises';
import { makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BlockIoError,
  checkedAdd,
  checkedMul,
  createOutputFile,
  type Extent,
  ExtentSet,
  FileDevice,
  MemoryDevice,
  SliceDevice,
  toSafeNumber,
  ZeroDevice,
} from '../src/index.js';
import { GiB, MiB, writeSparseFile } from './support/files.js';

const MAX = Number.MAX_SAFE_INTEGER;

let scratch: TempDir;
beforeEach(async () => {
  scratch = await makeTempDir('blockio-device-');
});
afterEach(async () => {
  await scratch.remove();
});

async function collect(iterable: AsyncIterable<Extent>): Promise<Extent[]> {
  const extents: Extent[] = [];
  for await (const extent of iterable) extents.push(extent);
  return extents;
}

describe('reading past the end', () => {
  it('is an OUT_OF_RANGE error for a file, naming the path and offset', async () => {
    const path = scratch.file('ten.bin');
    await writeFile(path, Buffer.from('0123456789'));
    const device = await FileDevice.open(path);
    expect((await device.read(8, 2)).toString()).toBe('89');
    expect((await device.read(10, 0)).byteLength).toBe(0);
    const error = await device.read(8, 3).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({ code: 'OUT_OF_RANGE', path, offset: 8 });
    await expect(device.read(11, 0)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(device.read(20, Buffer.alloc(1))).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await device.close();
  });

  it('is an OUT_OF_RANGE error for memory, zero and slice devices', async () => {
    const memory = new MemoryDevice(100);
    await expect(memory.read(99, 2)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(new ZeroDevice(100).read(50, 51)).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
    });
    const slice = new SliceDevice(memory, 10, { length: 20 });
    await expect(slice.read(15, 6)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(memory.write(100, Buffer.alloc(1))).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
    });
  });

  it('reads zeros (and writes grow the device) when the device zero-extends', async () => {
    const output = await createOutputFile(scratch.file('out.bin'), { sync: false });
    const device = output.device;
    expect(device.zeroExtends).toBe(true);
    expect((await device.read(1000, 16)).equals(Buffer.alloc(16))).toBe(true);
    await device.write(4 * GiB + 3, Buffer.from('tail'));
    expect(device.size).toBe(4 * GiB + 7);
    const around = await device.read(4 * GiB, 16);
    expect(around.equals(Buffer.from('\0\0\0tail\0\0\0\0\0\0\0\0\0'))).toBe(true);
    await output.commit();
    expect((await stat(scratch.file('out.bin'))).size).toBe(4 * GiB + 7);

    const memory = new MemoryDevice(4, { zeroExtends: true });
    expect((await memory.read(2, 6)).equals(Buffer.alloc(6))).toBe(true);
  });
});

describe('offsets above 4 GiB on real sparse files', () => {
  it('reads and writes bytes at 4 GiB and beyond through a FileDevice', async () => {
    const path = scratch.file('big.bin');
    await writeSparseFile(path, 9 * GiB, [{ offset: 8 * GiB + 1, length: 100, seed: 1 }]);
    const device = await FileDevice.open(path, { writable: true });
    expect(device.size).toBe(9 * GiB);
    await device.write(2 ** 32 - 2, Buffer.from('span'));
    const fresh = await FileDevice.open(path);
    expect((await fresh.read(2 ** 32 - 2, 4)).toString()).toBe('span');
    expect((await fresh.read(2 ** 32, 2)).toString()).toBe('an');
    expect((await fresh.read(8 * GiB + 1, 100)).equals(await device.read(8 * GiB + 1, 100))).toBe(
      true,
    );
    expect((await fresh.read(9 * GiB - 1, 1))[0]).toBe(0);
    await fresh.close();
    await device.close();
  });

  it('windows a device at an offset above 4 GiB', async () => {
    const path = scratch.file('big.bin');
    await writeSparseFile(path, 5 * GiB, [{ offset: 4 * GiB + 512, length: 512, seed: 2 }]);
    const parent = await FileDevice.open(path);
    const slice = new SliceDevice(parent, 4 * GiB, { ownsParent: true });
    expect(slice.size).toBe(GiB);
    expect((await slice.read(512, 512)).equals(await parent.read(4 * GiB + 512, 512))).toBe(true);
    const extents = await collect(slice.extents({ offset: 0, length: MiB }));
    expect(extents.find((extent) => extent.kind === 'data')).toMatchObject({ offset: 0 });
    await slice.close();
    await expect(parent.read(0, 1)).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('offsets and sizes beyond 2^53', () => {
  it('are refused with UNSAFE_INTEGER, before any allocation', async () => {
    const device = new MemoryDevice(16, { zeroExtends: true });
    await expect(device.read(2 ** 53, 1)).rejects.toMatchObject({ code: 'UNSAFE_INTEGER' });
    await expect(device.read(0, 2 ** 53)).rejects.toMatchObject({ code: 'UNSAFE_INTEGER' });
    await expect(device.read(MAX - 1, 4)).rejects.toMatchObject({ code: 'UNSAFE_INTEGER' });
    await expect(device.write(MAX, Buffer.alloc(2))).rejects.toMatchObject({
      code: 'UNSAFE_INTEGER',
    });
    await expect(device.writeZeroes(2 ** 60, 1)).rejects.toMatchObject({
      code: 'UNSAFE_INTEGER',
    });
  });

  it('are refused by a fixed-size device even when the length would fit in memory', async () => {
    const device = new MemoryDevice(16);
    await expect(device.read(0, 2 ** 40)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
  });

  it('refuses negative or fractional offsets as OUT_OF_RANGE', async () => {
    const device = new MemoryDevice(16);
    await expect(device.read(-1, 1)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(device.read(1.5, 1)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(device.read(0, Number.NaN)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
  });

  it('converts 64-bit fields only when safe, naming the field', () => {
    expect(toSafeNumber(2n ** 53n - 1n, 'size')).toBe(MAX);
    const error = (() => {
      try {
        toSafeNumber(2n ** 53n, 'l1_table_offset', { path: 'x.qcow2', offset: 40 });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toMatchObject({
      code: 'UNSAFE_INTEGER',
      structure: 'l1_table_offset',
      path: 'x.qcow2',
      offset: 40,
    });
    expect((error as Error).message).toContain('l1_table_offset');
    expect(() => toSafeNumber(-(2n ** 60n), 'delta')).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => checkedAdd(MAX, 1)).toThrow(expect.objectContaining({ code: 'UNSAFE_INTEGER' }));
    expect(() => checkedMul(2 ** 30, 2 ** 30)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
  });

  it('are refused by slices, extent sets and output files', async () => {
    const parent = new MemoryDevice(16, { zeroExtends: true });
    expect(() => new SliceDevice(parent, 2 ** 53)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => new ExtentSet().add(MAX, 2)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => new ExtentSet().add(2 ** 53, 1)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
    const path = scratch.file('huge.img');
    await expect(createOutputFile(path, { size: 2 ** 53 })).rejects.toMatchObject({
      code: 'UNSAFE_INTEGER',
    });
    await expect(stat(`${path}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('device states and system errors', () => {
  it('is read-only unless asked, and refuses I/O after close', async () => {
    const path = scratch.file('ro.bin');
    await writeFile(path, Buffer.alloc(10));
    const device = await FileDevice.open(path);
    expect(device.readOnly).toBe(true);
    await expect(device.write(0, Buffer.alloc(1))).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(device.discard(0, 1)).rejects.toMatchObject({ code: 'READ_ONLY' });
    await device.close();
    await device.close();
    await expect(device.read(0, 1)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(new ZeroDevice(10).write(0, Buffer.alloc(1))).rejects.toMatchObject({
      code: 'READ_ONLY',
    });
  });

  it('maps missing files and directories to typed errors', async () => {
    await expect(FileDevice.open(scratch.file('missing'))).rejects.toMatchObject({
      code: 'ENOENT',
      path: scratch.file('missing'),
    });
    await mkdir(scratch.file('dir'));
    await expect(FileDevice.open(scratch.file('dir'))).rejects.toMatchObject({ code: 'EISDIR' });
  });

  // Attaching a loop device needs root; CI runs as root.
  it.runIf(process.getuid?.() === 0)(
    'opens a block device (a loop device) and sizes it',
    async () => {
      const backing = scratch.file('backing.img');
      await writeSparseFile(backing, 10 * MiB, [{ offset: 3 * MiB + 512, length: 1024, seed: 3 }]);
      const { stdout } = await runPeerOk('losetup', ['--find', '--show', backing]);
      const loop = stdout.trim();
      try {
        const device = await FileDevice.open(loop);
        expect(device.isBlockDevice).toBe(true);
        expect(device.size).toBe(10 * MiB);
        expect(device.alignment.logical).toBe(512);
        const file = await FileDevice.open(backing);
        expect((await device.read(3 * MiB, 2048)).equals(await file.read(3 * MiB, 2048))).toBe(
          true,
        );
        await expect(device.read(10 * MiB - 1, 2)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
        expect(await collect(device.extents())).toEqual([
          { offset: 0, length: 10 * MiB, kind: 'data' },
        ]);
        await file.close();
        await device.close();
      } finally {
        await runPeerOk('losetup', ['--detach', loop]);
      }
    },
  );
});

describe('memory, zero and slice devices', () => {
  it('zero device reads zeros and reports itself unallocated', async () => {
    const zeros = new ZeroDevice(3 * MiB);
    expect((await zeros.read(MiB, 10)).equals(Buffer.alloc(10))).toBe(true);
    expect(await collect(zeros.extents({ offset: MiB, length: 5 * MiB }))).toEqual([
      { offset: MiB, length: 2 * MiB, kind: 'unallocated' },
    ]);
  });

  it('slices translate offsets, writes and extents', async () => {
    const memory = new MemoryDevice(100);
    const slice = new SliceDevice(memory, 40, { length: 50 });
    await slice.write(0, Buffer.from('abc'));
    await slice.writeZeroes(1, 1);
    expect(memory.bytes.subarray(40, 43).toString('latin1')).toBe('a\0c');
    expect(await collect(slice.extents())).toEqual([{ offset: 0, length: 50, kind: 'data' }]);
    expect(() => new SliceDevice(memory, 101)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
    expect(() => new SliceDevice(memory, 60, { length: 41 })).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE' }),
    );
    expect(new SliceDevice(memory, 60).size).toBe(40);
  });
});

describe('errors raised through a slice', () => {
  it('name the file under the window and the absolute offset in it, as the parent does', async () => {
    const disk = new MemoryDevice(4096, { name: 'disk.img' });
    const partition = new SliceDevice(disk, 1024, { length: 2048 });
    // The slice's own check and the parent's check, for the same bad byte range.
    const ownError = await partition.read(2000, 100).catch((caught: unknown) => caught);
    const parentError = await disk.read(4000, 100).catch((caught: unknown) => caught);
    expect(ownError).toBeInstanceOf(BlockIoError);
    expect(ownError).toMatchObject({
      code: 'OUT_OF_RANGE',
      path: 'disk.img',
      offset: 3024,
      structure: 'slice of 2048 bytes at 1024',
      message: 'cannot read 100 bytes at offset 3024: the slice ends at 3072',
    });
    expect(parentError).toMatchObject({ code: 'OUT_OF_RANGE', path: 'disk.img', offset: 4000 });
    await expect(partition.write(2048, Buffer.alloc(1))).rejects.toMatchObject({
      path: 'disk.img',
      offset: 3072,
    });
    await expect(partition.read(-1, 1)).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
      path: 'disk.img',
      offset: undefined,
      structure: 'slice of 2048 bytes at 1024',
    });
    await expect(partition.read(10, 2 ** 53)).rejects.toMatchObject({
      code: 'UNSAFE_INTEGER',
      path: 'disk.img',
      offset: 1034,
    });
  });

  it('count from the file through a chain of slices', async () => {
    const disk = new MemoryDevice(8192, { name: 'disk.img' });
    const partition = new SliceDevice(disk, 1024);
    const block = new SliceDevice(partition, 512, { length: 512 });
    expect(block.name).toBe('disk.img@1024@512');
    await expect(block.read(500, 100)).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
      path: 'disk.img',
      offset: 2036,
      structure: 'slice of 512 bytes at 1536',
    });
    expect(() => new SliceDevice(partition, 8000)).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE', path: 'disk.img', offset: 9024 }),
    );
  });

  it('say read-only and closed about the file, with the window as the structure', async () => {
    const disk = new MemoryDevice(4096, { name: 'disk.img' });
    const partition = new SliceDevice(disk, 1024, { readOnly: true });
    await expect(partition.write(0, Buffer.alloc(1))).rejects.toMatchObject({
      code: 'READ_ONLY',
      path: 'disk.img',
      structure: 'slice of 3072 bytes at 1024',
    });
    await partition.close();
    await expect(partition.read(0, 1)).rejects.toMatchObject({ code: 'CLOSED', path: 'disk.img' });
  });

  it('keep offsets exact past 2^53 - 1 in a zero-extending file', async () => {
    const output = new MemoryDevice(0, { name: 'out.img', zeroExtends: true });
    const tail = new SliceDevice(output, MAX - 10);
    // The window grows with its file, but not past the offsets the file can address.
    expect((await tail.read(5, 5)).equals(Buffer.alloc(5))).toBe(true);
    await expect(tail.read(20, 1)).rejects.toMatchObject({
      code: 'UNSAFE_INTEGER',
      path: 'out.img',
      offset: BigInt(MAX) + 10n,
    });
    await expect(tail.write(10, Buffer.alloc(1))).rejects.toMatchObject({
      code: 'UNSAFE_INTEGER',
      path: 'out.img',
      offset: MAX,
    });
  });
});

describe('MemoryDevice', () => {
  it('copies the bytes it is given, so the caller sees no writes, grown or not', async () => {
    const given = Buffer.from('abcdefgh');
    const fixed = new MemoryDevice(given);
    await fixed.write(0, Buffer.from('X'));
    expect(given.toString()).toBe('abcdefgh');
    expect(fixed.bytes.toString()).toBe('Xbcdefgh');

    const growing = new MemoryDevice(given, { zeroExtends: true });
    await growing.write(1, Buffer.from('Y'));
    await growing.write(100, Buffer.from('Z'));
    await growing.write(2, Buffer.from('W'));
    expect(given.toString()).toBe('abcdefgh');
    expect(growing.size).toBe(101);
    expect(growing.bytes.length).toBe(101);
    expect(growing.bytes.subarray(0, 8).toString()).toBe('aYWdefgh');
    expect(growing.bytes[100]).toBe('Z'.charCodeAt(0));
  });

  it('is writable by default, unlike FileDevice', async () => {
    const device = new MemoryDevice(4);
    expect(device.readOnly).toBe(false);
    await device.write(0, Buffer.from('ok'));
    expect(new MemoryDevice(4, { readOnly: true }).readOnly).toBe(true);
  });
});
