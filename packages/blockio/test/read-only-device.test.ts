import { seededBytes } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { BlockIoError, copy, type Extent, MemoryDevice, readOnlyDevice } from '../src/index.js';

/** A read function over `bytes` that returns at most `most` bytes per call, as sftp may. */
function dribble(bytes: Uint8Array, most: number, calls: number[] = []) {
  return async (offset: number, into: Uint8Array): Promise<number> => {
    calls.push(offset);
    const count = Math.max(0, Math.min(most, into.byteLength, bytes.byteLength - offset));
    into.set(bytes.subarray(offset, offset + count));
    return count;
  };
}

describe('readOnlyDevice', () => {
  it('loops over short reads until the request is whole', async () => {
    const bytes = seededBytes(10_000, 1);
    const calls: number[] = [];
    const device = readOnlyDevice({
      name: 'host:obj',
      size: 10_000,
      read: dribble(bytes, 3000, calls),
    });
    expect(Buffer.from(await device.read(1000, 8000))).toEqual(
      Buffer.from(bytes.subarray(1000, 9000)),
    );
    expect(calls).toEqual([1000, 4000, 7000]);
    const into = new Uint8Array(10);
    expect(await device.read(9990, into)).toBe(into);
    expect(Buffer.from(into)).toEqual(Buffer.from(bytes.subarray(9990)));
  });

  it('is read-only and takes its name, size and queue depth from the options', async () => {
    const device = readOnlyDevice({
      name: 'host:obj',
      size: 16,
      queueDepth: 8,
      read: dribble(new Uint8Array(16), 16),
    });
    expect(device).toMatchObject({ name: 'host:obj', size: 16, readOnly: true, queueDepth: 8 });
    await expect(device.write(0, Buffer.from('x'))).rejects.toMatchObject({
      code: 'READ_ONLY',
      path: 'host:obj',
    });
    await expect(device.discard(0, 4)).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(device.read(8, 16)).rejects.toMatchObject({
      code: 'OUT_OF_RANGE',
      path: 'host:obj',
    });
  });

  it('raises SHORT_READ naming the device and the offset where the data ended', async () => {
    // The object file is shorter than the size it was listed with.
    const device = readOnlyDevice({
      name: 'osd3:rbd_data.1.0',
      size: 8192,
      read: dribble(new Uint8Array(5000), 1024),
    });
    const error = await device.read(4096, 4096).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({ code: 'SHORT_READ', path: 'osd3:rbd_data.1.0', offset: 5000 });
    expect((error as Error).message).toBe(
      'the source ended after 904 of the 4096 bytes asked for at 4096 (the device is 8192 bytes)',
    );
  });

  it('turns a failing read into a typed error naming the device and offset', async () => {
    const refused = Object.assign(new Error('Permission denied'), { code: 'EACCES' });
    const device = readOnlyDevice({
      name: 'host:obj',
      size: 4096,
      read: async () => {
        throw refused;
      },
    });
    await expect(device.read(512, 512)).rejects.toMatchObject({
      code: 'EACCES',
      path: 'host:obj',
      offset: 512,
      cause: refused,
    });
    const opaque = readOnlyDevice({
      name: 'x',
      size: 1,
      read: () => Promise.reject(new Error('channel closed')),
    });
    await expect(opaque.read(0, 1)).rejects.toMatchObject({
      code: 'EIO',
      message: 'cannot read 1 bytes: channel closed',
    });
  });

  it('refuses a read function that claims more bytes than asked or a non-integer', async () => {
    for (const claimed of [5, -1, 1.5, Number.NaN]) {
      const device = readOnlyDevice({ name: 'bad', size: 64, read: async () => claimed });
      await expect(device.read(0, 4)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        path: 'bad',
        offset: 0,
      });
    }
  });

  it('never calls the read function for an empty read, and a zero-size device works', async () => {
    const calls: number[] = [];
    const device = readOnlyDevice({
      name: 'empty',
      size: 0,
      read: dribble(new Uint8Array(0), 1, calls),
    });
    expect((await device.read(0, 0)).byteLength).toBe(0);
    expect(calls).toEqual([]);
  });

  it('passes extents through, clamped to the device, and copies sparsely', async () => {
    const bytes = Buffer.alloc(1 << 20);
    bytes.fill(7, 0, 65536);
    const asked: Array<{ offset: number; length: number }> = [];
    const device = readOnlyDevice({
      name: 'sparse',
      size: bytes.byteLength,
      read: dribble(bytes, 100_000),
      async *extents(range) {
        asked.push(range);
        const split = Math.max(range.offset, 65536);
        const end = range.offset + range.length;
        if (split > range.offset)
          yield { offset: range.offset, length: split - range.offset, kind: 'data' } as Extent;
        if (end > split)
          yield { offset: split, length: end - split, kind: 'unallocated' } as Extent;
      },
    });
    const target = new MemoryDevice(bytes.byteLength);
    const result = await copy(device, target);
    expect(result).toMatchObject({ bytesRead: 65536, bytesWritten: 65536 });
    expect(target.bytes.equals(bytes)).toBe(true);
    const extents: Extent[] = [];
    for await (const extent of device.extents?.({ offset: 1000, length: 10 << 20 }) ?? [])
      extents.push(extent);
    expect(asked.at(-1)).toEqual({ offset: 1000, length: (1 << 20) - 1000 });
    expect(extents.at(-1)).toEqual({
      offset: 65536,
      length: (1 << 20) - 65536,
      kind: 'unallocated',
    });

    const plain = readOnlyDevice({ name: 'plain', size: 100, read: dribble(bytes, 100) });
    const one: Extent[] = [];
    for await (const extent of plain.extents?.() ?? []) one.push(extent);
    expect(one).toEqual([{ offset: 0, length: 100, kind: 'data' }]);
  });

  it('closes the source once, and refuses reads after close', async () => {
    let closed = 0;
    const device = readOnlyDevice({
      name: 'host:obj',
      size: 8,
      read: dribble(new Uint8Array(8), 8),
      close: async () => {
        closed++;
      },
    });
    await device.close();
    await device.close();
    expect(closed).toBe(1);
    await expect(device.read(0, 1)).rejects.toMatchObject({ code: 'CLOSED', path: 'host:obj' });
  });

  it('refuses a bad size with a typed error', () => {
    expect(() => readOnlyDevice({ name: 'neg', size: -1, read: async () => 0 })).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE', path: 'neg' }),
    );
  });
});
