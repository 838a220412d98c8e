import { readFile, stat, writeFile } from 'node:fs/promises';
import { allocatedBytes, filesEqual, makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  copy,
  createOutputFile,
  FileDevice,
  MemoryDevice,
  mapFileData,
  SliceDevice,
  withOutputFile,
} from '../src/index.js';
import { ObservedDevice } from './support/devices.js';
import { GiB, KiB, MiB, writeSparseFile } from './support/files.js';

let scratch: TempDir;
beforeEach(async () => {
  scratch = await makeTempDir('blockio-copy-');
});
afterEach(async () => {
  await scratch.remove();
});

/** Copies `from` to a new output file at `to` the way every tool does. */
async function copyFile(
  from: string,
  to: string,
  options: Parameters<typeof copy>[2] = {},
  io?: 'sync' | 'async',
) {
  const source = await FileDevice.open(from, { io });
  try {
    return await withOutputFile(to, { size: source.size }, (output) =>
      copy(source, output.device, options),
    );
  } finally {
    await source.close();
  }
}

/** Bytes in 4 KiB-aligned blocks that hold a non-zero byte: what a sparse copy must write. */
function nonZeroBlockBytes(bytes: Buffer, block = 4 * KiB): number {
  const zeros = Buffer.alloc(block);
  let total = 0;
  for (let offset = 0; offset < bytes.byteLength; offset += block) {
    const end = Math.min(bytes.byteLength, offset + block);
    if (!bytes.subarray(offset, end).equals(zeros.subarray(0, end - offset))) {
      total += end - offset;
    }
  }
  return total;
}

describe('copy between real files', () => {
  it.each([
    ['synchronous', 'sync', undefined],
    ['thread-pool', 'async', 4],
  ] as const)(
    'makes a byte-identical copy whose allocation is the data, not the size (%s I/O)',
    async (_, io, concurrency) => {
      const from = scratch.file('source.img');
      const to = scratch.file('copy.img');
      await writeSparseFile(from, 64 * MiB + 777, [
        { offset: 0, length: 5000, seed: 1 },
        { offset: 3 * MiB + 123, length: 2 * MiB, seed: 2 },
        { offset: 20 * MiB, length: 1 * MiB, seed: 3 },
        { offset: 64 * MiB + 700, length: 77, seed: 4 },
      ]);
      // Zeros written explicitly are allocated in the source but must not be in the copy.
      const handle = await FileDevice.open(from, { writable: true });
      await handle.write(20 * MiB + 256 * KiB, Buffer.alloc(512 * KiB));
      await handle.close();

      const result = await copyFile(from, to, { concurrency }, io);

      expect(await filesEqual(from, to)).toBe(true);
      const expected = nonZeroBlockBytes(await readFile(from));
      expect(result.bytesWritten).toBe(expected);
      expect(result.bytesWritten + result.bytesZero).toBe(result.bytesTotal);
      expect(result.bytesTotal).toBe(64 * MiB + 777);
      const allocated = await allocatedBytes(to);
      expect(allocated).toBeGreaterThanOrEqual(expected);
      expect(allocated).toBeLessThanOrEqual(expected + 256 * KiB);
    },
  );

  it('allocates no more than cp --sparse=always does for the same file', async () => {
    const from = scratch.file('source.img');
    await writeSparseFile(from, 32 * MiB, [
      { offset: 1 * MiB, length: 3 * MiB, seed: 5 },
      { offset: 17 * MiB + 4096, length: 8192, seed: 6 },
    ]);
    await copyFile(from, scratch.file('ours.img'));
    await runPeerOk('cp', ['--sparse=always', from, scratch.file('cp.img')]);
    expect(await filesEqual(scratch.file('ours.img'), scratch.file('cp.img'))).toBe(true);
    expect(await allocatedBytes(scratch.file('ours.img'))).toBeLessThanOrEqual(
      await allocatedBytes(scratch.file('cp.img')),
    );
  });

  it('handles offsets above 4 GiB on real sparse files', async () => {
    const from = scratch.file('big.img');
    const to = scratch.file('big-copy.img');
    const size = 6 * GiB + 4096 + 13;
    const runs = [
      { offset: 4 * GiB - 100, length: 300, seed: 7 }, // crosses the 32-bit boundary
      { offset: 5 * GiB + 12_345, length: MiB, seed: 8 },
      { offset: size - 13, length: 13, seed: 9 },
    ];
    await writeSparseFile(from, size, runs);

    await copyFile(from, to);

    expect((await stat(to)).size).toBe(size);
    const source = await FileDevice.open(from);
    const target = await FileDevice.open(to);
    for (const run of runs) {
      const expected = await source.read(run.offset, run.length);
      expect((await target.read(run.offset, run.length)).equals(expected)).toBe(true);
    }
    await source.close();
    await target.close();
    // Outside the runs both files are holes (which read as zeros), block for block.
    expect(await mapFileData(to, size)).toEqual(await mapFileData(from, size));
    expect(await allocatedBytes(to)).toBeLessThanOrEqual(MiB + 3 * 4 * KiB + 256 * KiB);
  });

  it('gives a growing target its full length when the source ends in a hole', async () => {
    const from = scratch.file('tail-hole.img');
    const to = scratch.file('tail-copy.img');
    await writeSparseFile(from, 10 * MiB, [{ offset: 0, length: 4096, seed: 10 }]);
    const source = await FileDevice.open(from);
    const output = await createOutputFile(to); // no size: grows as written
    await copy(source, output.device);
    await output.commit();
    await source.close();
    expect((await stat(to)).size).toBe(10 * MiB);
    expect(await filesEqual(from, to)).toBe(true);
  });

  it('writes every byte when sparse is off', async () => {
    const from = scratch.file('dense-source.img');
    const to = scratch.file('dense.img');
    await writeSparseFile(from, 4 * MiB, [{ offset: MiB, length: 4096, seed: 11 }]);
    const result = await copyFile(from, to, { sparse: false });
    expect(await filesEqual(from, to)).toBe(true);
    expect(result.bytesWritten + result.bytesZero).toBe(4 * MiB);
    expect(await allocatedBytes(to)).toBeGreaterThanOrEqual(4 * MiB);
  });

  it('overwrites stale bytes when the target is not known to be zeroed', async () => {
    const from = scratch.file('source.img');
    const to = scratch.file('dirty-target.img');
    await writeSparseFile(from, 3 * MiB, [{ offset: MiB + 10, length: 100, seed: 12 }]);
    await writeFile(to, Buffer.alloc(3 * MiB, 0xee));
    const source = await FileDevice.open(from);
    const target = await FileDevice.open(to, { writable: true });
    await copy(source, target);
    await target.close();
    await source.close();
    expect(await filesEqual(from, to)).toBe(true);
  });

  it('copies only the given ranges, at their own offsets', async () => {
    const from = scratch.file('source.img');
    await writeSparseFile(from, 2 * MiB, [{ offset: 0, length: 2 * MiB, seed: 13 }]);
    const source = await FileDevice.open(from);
    const target = new MemoryDevice(2 * MiB);
    const ranges = [
      { offset: 100, length: 50 },
      { offset: MiB - 3, length: MiB + 3 },
    ];
    const result = await copy(source, target, { ranges, targetIsZeroed: true });
    const original = await readFile(from);
    const expected = Buffer.alloc(2 * MiB);
    for (const range of ranges) {
      original.copy(expected, range.offset, range.offset, range.offset + range.length);
    }
    expect(target.bytes.equals(expected)).toBe(true);
    expect(result.bytesTotal).toBe(50 + MiB + 3);
    await source.close();
  });

  it('copies a window of a device to the window of another (-o / -O)', async () => {
    const from = scratch.file('disk.img');
    await writeSparseFile(from, 8 * MiB, [
      { offset: MiB, length: MiB, seed: 14 },
      { offset: 5 * MiB, length: 4096, seed: 15 },
    ]);
    const source = await FileDevice.open(from);
    const window = new SliceDevice(source, MiB, { length: 6 * MiB });
    const target = new MemoryDevice(7 * MiB);
    await copy(window, new SliceDevice(target, MiB), { targetIsZeroed: true });
    expect(target.bytes.subarray(MiB).equals(await source.read(MiB, 6 * MiB))).toBe(true);
    expect(target.bytes.subarray(0, MiB).every((byte) => byte === 0)).toBe(true);
    await source.close();
  });
});

describe('cancelling a copy', () => {
  it('leaves neither the target nor a .partial file when aborted mid-way', async () => {
    const from = scratch.file('source.img');
    const to = scratch.file('never.img');
    await writeSparseFile(from, 16 * MiB, [{ offset: 0, length: 16 * MiB, seed: 16 }]);
    const controller = new AbortController();
    const file = await FileDevice.open(from);
    let readWhenAborted = 0;
    const source = new ObservedDevice(file, (bytesRead) => {
      if (bytesRead >= 4 * MiB && !controller.signal.aborted) {
        readWhenAborted = bytesRead;
        controller.abort(new Error('test abort'));
      }
    });
    let partialSeen = false;
    const attempt = withOutputFile(to, { size: source.size }, async (output) => {
      partialSeen = (await stat(output.partialPath)).isFile();
      return copy(source, output.device, {
        blockSize: 256 * KiB,
        concurrency: 2,
        signal: controller.signal,
      });
    });
    await expect(attempt).rejects.toMatchObject({ code: 'ABORTED' });
    await file.close();
    expect(partialSeen).toBe(true);
    expect(readWhenAborted).toBeGreaterThanOrEqual(4 * MiB);
    expect(readWhenAborted).toBeLessThan(16 * MiB);
    await expect(stat(to)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${to}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does nothing at all when the signal is already aborted', async () => {
    const from = scratch.file('source.img');
    await writeSparseFile(from, MiB, [{ offset: 0, length: 4096, seed: 17 }]);
    const attempt = copyFile(from, scratch.file('x.img'), { signal: AbortSignal.abort() });
    await expect(attempt).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(stat(scratch.file('x.img'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(scratch.file('x.img.partial'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('copy scheduling', () => {
  it('defaults to one block in flight for synchronous devices, more for the thread pool', async () => {
    const path = scratch.file('queue.img');
    await writeSparseFile(path, MiB, []);
    const sync = await FileDevice.open(path);
    const pooled = await FileDevice.open(path, { io: 'async' });
    expect([sync.queueDepth, pooled.queueDepth, new MemoryDevice(1).queueDepth]).toEqual([1, 4, 1]);
    expect(new SliceDevice(pooled, 0).queueDepth).toBe(4);
    await sync.close();
    await pooled.close();
  });

  it('gives the event loop a turn during a long copy between synchronous devices', async () => {
    // Every clock reading is 25 ms later than the last, so each block ends a time slice.
    let clock = 0;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => (clock += 25));
    try {
      const source = new MemoryDevice(4 * MiB);
      source.bytes.fill(1);
      let turns = 0;
      const count = () => {
        turns++;
        if (turns < 1000) setImmediate(count);
      };
      setImmediate(count);
      const copying = copy(source, new MemoryDevice(4 * MiB), { blockSize: 256 * KiB });
      const result = await copying;
      expect(result.bytesWritten).toBe(4 * MiB);
      expect(turns).toBeGreaterThanOrEqual(8);
    } finally {
      now.mockRestore();
    }
  });
});

describe('copy buffers', () => {
  it('reads into one page-aligned buffer per lane, reused block after block', async () => {
    const memories = new Set<ArrayBufferLike>();
    class RecordingDevice extends MemoryDevice {
      protected override async readAt(offset: number, into: Uint8Array): Promise<void> {
        // allocateAligned's buffers own their memory: the view starts at its start.
        expect(into.byteOffset).toBe(0);
        expect(into.buffer.byteLength).toBe(64 * KiB);
        // Backed by pages V8 reserves itself (a resizable ArrayBuffer): page-aligned.
        expect((into.buffer as { resizable?: boolean }).resizable).toBe(true);
        memories.add(into.buffer);
        await super.readAt(offset, into);
      }
    }
    const source = new RecordingDevice(MiB + 100);
    for (let i = 0; i < source.size; i++) source.bytes[i] = (i * 7 + 1) & 0xff || 1;
    const target = new MemoryDevice(MiB + 100);
    const result = await copy(source, target, { blockSize: 64 * KiB, concurrency: 3 });
    expect(result.bytesWritten).toBe(MiB + 100);
    expect(target.bytes.equals(source.bytes)).toBe(true);
    expect(memories.size).toBeGreaterThan(0);
    expect(memories.size).toBeLessThanOrEqual(3);
  });
});

describe('copy argument checks', () => {
  it('refuses a read-only target', async () => {
    const source = new MemoryDevice(4096);
    const target = new MemoryDevice(4096, { readOnly: true });
    await expect(copy(source, target)).rejects.toMatchObject({ code: 'READ_ONLY' });
  });

  it('refuses a fixed-size target that is too small', async () => {
    const source = new MemoryDevice(8192);
    await expect(copy(source, new MemoryDevice(4096))).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
    });
  });

  it('refuses ranges beyond the source or out of order', async () => {
    const source = new MemoryDevice(8192);
    const target = new MemoryDevice(8192);
    await expect(
      copy(source, target, { ranges: [{ offset: 4096, length: 8192 }] }),
    ).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    const unordered = [
      { offset: 4096, length: 10 },
      { offset: 0, length: 10 },
    ];
    await expect(copy(source, target, { ranges: unordered })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      copy(source, target, { ranges: [{ offset: 2 ** 53 - 1, length: 2 }] }),
    ).rejects.toMatchObject({ code: 'UNSAFE_INTEGER' });
  });

  it('refuses unbounded buffer settings', async () => {
    const device = new MemoryDevice(4096);
    for (const options of [{ blockSize: 0 }, { blockSize: 2 ** 30 }, { concurrency: 0 }]) {
      await expect(copy(device, new MemoryDevice(4096), options)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
  });
});
