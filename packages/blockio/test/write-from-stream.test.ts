import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { makeTempDir, seededBytes, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BaseBlockDevice,
  BlockIoError,
  MemoryDevice,
  type ProgressEvent,
  withOutputFile,
  writeFromStream,
} from '../src/index.js';
import { KiB, MiB } from './support/files.js';

/** A MemoryDevice that records every write and discard it is asked for. */
class RecordingDevice extends BaseBlockDevice {
  readonly inner: MemoryDevice;
  readonly calls: Array<[string, number, number]> = [];
  constructor(size: number, zeroExtends = false) {
    super({ name: 'target.raw', size, readOnly: false, zeroExtends });
    this.inner = new MemoryDevice(size, { zeroExtends });
  }
  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    await this.inner.read(offset, into);
  }
  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    this.calls.push(['write', offset, data.byteLength]);
    await this.inner.write(offset, data);
  }
  protected override async discardAt(offset: number, length: number): Promise<void> {
    this.calls.push(['discard', offset, length]);
    await this.inner.discard(offset, length);
  }
  protected override async writeZeroesAt(offset: number, length: number): Promise<void> {
    this.calls.push(['zeroes', offset, length]);
    await this.inner.writeZeroes(offset, length);
  }
}

async function* chunksOf(bytes: Uint8Array, sizes: number[]): AsyncIterable<Uint8Array> {
  let at = 0;
  for (let index = 0; at < bytes.byteLength; index++) {
    const size = sizes[index % sizes.length] ?? 1;
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

const failureOf = (work: Promise<unknown>) =>
  work.then(
    () => undefined,
    (error) => error,
  );

describe('writeFromStream', () => {
  it('gathers small chunks into block-sized writes at the offset', async () => {
    const data = seededBytes(100 * KiB, 3);
    const target = new RecordingDevice(MiB);
    const result = await writeFromStream(target, 4096, chunksOf(data, [1000, 7, 0, 3000]), {
      blockSize: 32 * KiB,
    });
    expect(result).toEqual({
      bytesTotal: 100 * KiB,
      bytesRead: 100 * KiB,
      bytesWritten: 100 * KiB,
      bytesZero: 0,
    });
    expect(target.calls.map(([, , length]) => length)).toEqual([32, 32, 32, 4].map((k) => k * KiB));
    expect(target.calls[0]?.[1]).toBe(4096);
    expect(target.inner.bytes.subarray(4096, 4096 + data.byteLength).equals(data)).toBe(true);
    expect(target.inner.bytes.subarray(0, 4096).every((byte) => byte === 0)).toBe(true);
  });

  it('writes big chunks from where they are, block by block', async () => {
    const data = seededBytes(80 * KiB, 4);
    const target = new RecordingDevice(MiB);
    await writeFromStream(target, 0, chunksOf(data, [10 * KiB, 70 * KiB]), { blockSize: 32 * KiB });
    // 10 KiB staged and filled up to 32, then 48 KiB of the big chunk: 32 direct, 16 staged.
    expect(target.calls.map(([, , length]) => length / KiB)).toEqual([32, 32, 16]);
    expect(target.inner.bytes.subarray(0, data.byteLength).equals(data)).toBe(true);
  });

  it('skips all-zero blocks on a zeroed target and discards them on another', async () => {
    // Data, 64 KiB of zeros, data, from an offset not aligned to the granularity.
    const data = Buffer.concat([
      seededBytes(8 * KiB, 5),
      Buffer.alloc(64 * KiB),
      seededBytes(5000, 6),
    ]);
    const zeroed = new RecordingDevice(MiB);
    const result = await writeFromStream(zeroed, 1000, chunksOf(data, [4096]), {
      targetIsZeroed: true,
      blockSize: 16 * KiB,
    });
    expect(zeroed.inner.bytes.subarray(1000, 1000 + data.byteLength).equals(data)).toBe(true);
    expect(zeroed.calls.some(([kind]) => kind !== 'write')).toBe(false);
    expect(result.bytesZero).toBeGreaterThanOrEqual(60 * KiB);
    expect(result.bytesWritten + result.bytesZero).toBe(data.byteLength);
    // Holes line up with 4 KiB blocks of the device, not of the stream.
    for (const [, offset, length] of zeroed.calls) {
      if (offset + length < 1000 + data.byteLength) expect((offset + length) % 4096).toBe(0);
    }

    const dirty = new RecordingDevice(MiB);
    dirty.inner.bytes.fill(0xff);
    const again = await writeFromStream(dirty, 1000, chunksOf(data, [4096]), {
      blockSize: 16 * KiB,
    });
    expect(again).toEqual(result);
    expect(dirty.calls.some(([kind]) => kind === 'discard')).toBe(true);
    expect(dirty.inner.bytes.subarray(1000, 1000 + data.byteLength).equals(data)).toBe(true);

    const dense = new RecordingDevice(MiB);
    const written = await writeFromStream(dense, 0, chunksOf(data, [4096]), { sparse: false });
    expect(written).toMatchObject({ bytesWritten: data.byteLength, bytesZero: 0 });
  });

  it('grows a zero-extending target to the stream end even when it ends in zeros', async () => {
    const data = Buffer.concat([seededBytes(4096, 7), Buffer.alloc(12 * KiB)]);
    const target = new MemoryDevice(0, { zeroExtends: true });
    await writeFromStream(target, 512, chunksOf(data, [1500]), { targetIsZeroed: true });
    expect(target.size).toBe(512 + data.byteLength);
    expect(target.bytes.subarray(512).equals(data)).toBe(true);
  });

  it('with length, a short stream is SHORT_READ and a long one OUT_OF_RANGE, naming target and offset', async () => {
    const data = seededBytes(10_000, 8);
    const short = await failureOf(
      writeFromStream(new RecordingDevice(MiB), 4096, chunksOf(data, [3000]), { length: 12_000 }),
    );
    expect(short).toBeInstanceOf(BlockIoError);
    expect(short).toMatchObject({ code: 'SHORT_READ', path: 'target.raw', offset: 4096 + 10_000 });
    expect((short as Error).message).toBe(
      'the stream ended after 10000 of the 12000 bytes expected at offset 4096',
    );

    const long = new RecordingDevice(MiB);
    const error = await failureOf(
      writeFromStream(long, 4096, chunksOf(data, [3000]), { length: 8000, blockSize: 4096 }),
    );
    expect(error).toMatchObject({ code: 'OUT_OF_RANGE', path: 'target.raw', offset: 4096 + 8000 });
    // Nothing was written past the expected end.
    for (const [, offset, length] of long.calls)
      expect(offset + length).toBeLessThanOrEqual(12_096);

    const exact = await writeFromStream(new RecordingDevice(MiB), 0, chunksOf(data, [3000]), {
      length: 10_000,
    });
    expect(exact.bytesTotal).toBe(10_000);
    const empty = await writeFromStream(
      new RecordingDevice(16),
      16,
      chunksOf(new Uint8Array(0), [1]),
      {
        length: 0,
      },
    );
    expect(empty).toEqual({ bytesTotal: 0, bytesRead: 0, bytesWritten: 0, bytesZero: 0 });
  });

  it('refuses what cannot fit, read-only targets, bad offsets and non-byte chunks', async () => {
    const small = new RecordingDevice(8192);
    await expect(
      writeFromStream(small, 4096, chunksOf(new Uint8Array(1), [1]), { length: 8192 }),
    ).rejects.toMatchObject({ code: 'OUT_OF_RANGE', path: 'target.raw', offset: 4096 });
    // Without a length, found when the stream runs past the end, before anything is written.
    await expect(
      writeFromStream(small, 4096, chunksOf(Buffer.alloc(8192), [8192]), { targetIsZeroed: true }),
    ).rejects.toMatchObject({ code: 'OUT_OF_RANGE', path: 'target.raw', offset: 8192 });
    expect(small.calls).toEqual([]);
    await expect(
      writeFromStream(
        new MemoryDevice(16, { readOnly: true, name: 'ro' }),
        0,
        chunksOf(Buffer.alloc(1), [1]),
      ),
    ).rejects.toMatchObject({ code: 'READ_ONLY', path: 'ro' });
    await expect(writeFromStream(small, -1, chunksOf(Buffer.alloc(1), [1]))).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
      path: 'target.raw',
    });
    await expect(
      writeFromStream(small, 0, chunksOf(Buffer.alloc(1), [1]), { blockSize: 0 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    async function* text() {
      yield Buffer.from('ab');
      yield 'cd' as unknown as Uint8Array;
    }
    await expect(writeFromStream(small, 0, text())).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      path: 'target.raw',
      offset: 2,
    });
  });

  it('stops on abort with ABORTED and closes the stream', async () => {
    const controller = new AbortController();
    let closed = false;
    async function* endless() {
      try {
        for (;;) yield Buffer.alloc(4096, 1);
      } finally {
        closed = true;
      }
    }
    const events: ProgressEvent[] = [];
    const error = await failureOf(
      writeFromStream(new MemoryDevice(0, { zeroExtends: true, name: 'out' }), 0, endless(), {
        blockSize: 8192,
        signal: controller.signal,
        onProgress: (event) => {
          events.push(event);
          controller.abort();
        },
      }),
    );
    expect(error).toMatchObject({ code: 'ABORTED', path: 'out' });
    expect(closed).toBe(true);
    expect(events[0]).toMatchObject({ phase: 'write', total: 0 });
  });

  it('reports progress against length and ends with a final event', async () => {
    const events: ProgressEvent[] = [];
    await writeFromStream(
      new MemoryDevice(MiB),
      0,
      chunksOf(seededBytes(300 * KiB, 9), [50 * KiB]),
      {
        length: 300 * KiB,
        phase: 'restore',
        onProgress: (event) => events.push(event),
      },
    );
    expect(events.at(-1)).toMatchObject({ phase: 'restore', done: 300 * KiB, total: 300 * KiB });
  });

  describe('with files', () => {
    let scratch: TempDir;
    beforeEach(async () => {
      scratch = await makeTempDir('blockio-stream-');
    });
    afterEach(async () => {
      await scratch.remove();
    });

    it('writes a file stream into an atomic output, byte for byte', async () => {
      const input = scratch.file('backup.bin');
      const data = Buffer.concat([
        seededBytes(300 * KiB, 10),
        Buffer.alloc(2 * MiB),
        seededBytes(777, 11),
      ]);
      await writeFile(input, data);
      const output = scratch.file('disk.raw');
      const result = await withOutputFile(output, (file) =>
        writeFromStream(file.device, MiB, createReadStream(input, { highWaterMark: 10_000 }), {
          length: data.byteLength,
        }),
      );
      expect(result.bytesZero).toBeGreaterThanOrEqual(2 * MiB - 8 * KiB);
      const written = await readFile(output);
      expect(written.byteLength).toBe(MiB + data.byteLength);
      expect(written.subarray(MiB).equals(data)).toBe(true);
      expect((await stat(output)).size).toBe(MiB + data.byteLength);
    });
  });
});
