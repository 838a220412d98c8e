import { copyFile } from 'node:fs/promises';
import { MemoryDevice } from '@x/blockio';
import { makeTempDir } from '@x/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { openQcow2, type Qcow2WritePath, TableCache } from '../src/index.js';
import { qemuImage } from './support/qemu-fixtures.js';
import { deviceHash, qemuRawHash } from './support/raw-compare.js';

const temp = await makeTempDir('qcow2-skeleton-');
afterAll(() => temp.remove());

describe('TableCache', () => {
  it('keeps at most `capacity` tables and writes dirty ones back on eviction', async () => {
    const file = new MemoryDevice(16 * 512);
    const cache = new TableCache({
      file,
      tableSize: 512,
      maxBytes: 2 * 512,
      structure: 'L2 table',
    });
    expect(cache.capacity).toBe(2);
    await cache.update(0, (table) => table.fill(0x11));
    await cache.get(512);
    expect(file.bytes[0]).toBe(0);
    await cache.get(1024); // evicts table 0, which is dirty
    expect(file.bytes[0]).toBe(0x11);
    expect(cache.stats.resident).toBe(2);
    expect((await cache.get(0))[0]).toBe(0x11);
  });

  it('flushes dirty tables in offset order and leaves them clean', async () => {
    const writes: number[] = [];
    const file = new MemoryDevice(16 * 512);
    const write = file.write.bind(file);
    file.write = async (offset, data) => {
      writes.push(offset);
      await write(offset, data);
    };
    let hookRuns = 0;
    const cache = new TableCache({
      file,
      tableSize: 512,
      maxBytes: 8 * 512,
      structure: 'L2 table',
      beforeWriteBack: async () => {
        hookRuns++;
      },
    });
    await cache.put(2048, Buffer.alloc(512, 2));
    await cache.put(1024, Buffer.alloc(512, 1));
    await cache.flush();
    expect(writes).toEqual([1024, 2048]);
    expect(hookRuns).toBe(1);
    expect(cache.stats.dirty).toBe(0);
    await cache.flush();
    expect(writes).toEqual([1024, 2048]);
  });

  it('refuses markDirty on a table that is not resident', () => {
    const cache = new TableCache({
      file: new MemoryDevice(4096),
      tableSize: 512,
      maxBytes: 4096,
      structure: 'L2 table',
    });
    expect(() => cache.markDirty(512)).toThrow(/not cached/);
  });
});

describe('Qcow2Image skeleton', () => {
  it('reads what qemu-img convert -O raw writes', async () => {
    const image = await qemuImage('skeleton-basic', {
      size: '64M',
      commands: [
        'write -P 0x5a 0 3M',
        'write -z 8M 64k',
        'write -c -P 0x11 12M 128k',
        'discard 4M 64k',
      ],
    });
    const device = await openQcow2(image);
    try {
      expect(device.readOnly).toBe(true);
      expect(device.size).toBe(64 << 20);
      expect(await deviceHash(device)).toBe(await qemuRawHash(image));
      await expect(device.write(0, Buffer.alloc(1))).rejects.toMatchObject({ code: 'READ_ONLY' });
    } finally {
      await device.close();
    }
  });

  it('delegates writes, zeroes, discards, flush and close to the write path', async () => {
    const image = await qemuImage('skeleton-writable', { size: '16M' });
    const copy = temp.file('writable.qcow2');
    await copyFile(image, copy);
    const calls: string[] = [];
    const writePath: Qcow2WritePath = {
      write: async (offset, data) => void calls.push(`write ${offset} ${data.byteLength}`),
      writeZeroes: async (offset, length) => void calls.push(`zero ${offset} ${length}`),
      discard: async (offset, length) => void calls.push(`discard ${offset} ${length}`),
      flush: async () => void calls.push('flush'),
      close: async () => void calls.push('close'),
    };
    const device = await openQcow2(copy, { writable: true, writePath: () => writePath });
    expect(device.readOnly).toBe(false);
    expect(device.writePath).toBe(writePath);
    await device.write(4096, Buffer.alloc(512));
    await device.writeZeroes(0, 65536);
    await device.discard(65536, 65536);
    await device.flush();
    await device.close();
    expect(calls).toEqual([
      'write 4096 512',
      'zero 0 65536',
      'discard 65536 65536',
      'flush',
      'close',
    ]);
  });

  it('refuses writable opens while no write path exists', async () => {
    const image = await qemuImage('skeleton-writable', { size: '16M' });
    const copy = temp.file('no-writer.qcow2');
    await copyFile(image, copy);
    const { defaultWritePathFactory } = await import('../src/image/default-write-path.js');
    if (defaultWritePathFactory === undefined) {
      await expect(openQcow2(copy, { writable: true })).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
    }
  });
});
