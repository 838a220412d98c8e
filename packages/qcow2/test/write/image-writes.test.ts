import { copyFile, writeFile } from 'node:fs/promises';
import { makeTempDir, seededBytes, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQcow2, type Qcow2WritePath } from '../../src/index.js';
import { qemuImg, qemuIo } from '../support/qemu-fixtures.js';
import { expectSameImageFile } from './support.js';

const K = 1024;

// The writer's operations beyond the BlockDevice interface, reached on the image
// itself (no cast to Qcow2Writer): compared byte for byte with qemu-io / qemu-img.
describe('Qcow2Image: writeZeroes with unmap, writeCompressed and resize', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-image-writes-');
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('match qemu-io write -z -u, write -c and qemu-img resize', async () => {
    const theirs = dir.file('theirs.qcow2');
    const ours = dir.file('ours.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', theirs, '1M');
    await copyFile(theirs, ours);
    await qemuIo(
      theirs,
      'write -P 0x61 0 192k',
      'write -z -u 64k 64k',
      'write -z 128k 64k',
      'write -c -P 0x62 512k 64k',
    );
    await qemuImg('resize', '-q', '-f', 'qcow2', theirs, '4M');

    const image = await openQcow2(ours, { writable: true });
    try {
      await image.write(0, Buffer.alloc(192 * K, 0x61));
      await image.writeZeroes(64 * K, 64 * K, { unmap: true });
      await image.writeZeroes(128 * K, 64 * K);
      await image.writeCompressed(512 * K, Buffer.alloc(64 * K, 0x62));
      await image.resize(4 << 20);
      expect(image.size).toBe(4 << 20);
    } finally {
      await image.close();
    }
    await expectSameImageFile(ours, theirs);
  });

  it('writeCompressed on a zstd image matches qemu-io write -c, the short last cluster too', async () => {
    const theirs = dir.file('zstd-theirs.qcow2');
    const ours = dir.file('zstd-ours.qcow2');
    // 1 MiB + 4 KiB: the last cluster is 4 KiB of guest data, padded for compression.
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', theirs, '1028k');
    await copyFile(theirs, ours);
    const text = Buffer.from('zstd in a qcow2 cluster '.repeat(2731).slice(0, 64 * K));
    const random = seededBytes(64 * K, 7);
    const tail = Buffer.alloc(4 * K, 0x63);
    await writeFile(dir.file('text.bin'), text);
    await writeFile(dir.file('random.bin'), random);
    await qemuIo(
      theirs,
      'write -c -P 0x62 128k 64k',
      `write -c -s ${dir.file('text.bin')} 256k 64k`,
      `write -c -s ${dir.file('random.bin')} 320k 64k`,
      'write -c -P 0x63 1M 4k',
    );
    const image = await openQcow2(ours, { writable: true });
    try {
      await image.writeCompressed(128 * K, Buffer.alloc(64 * K, 0x62));
      await image.writeCompressed(256 * K, text);
      await image.writeCompressed(320 * K, random);
      await image.writeCompressed(1 << 20, tail);
    } finally {
      await image.close();
    }
    await expectSameImageFile(ours, theirs);
    const reopened = await openQcow2(ours);
    try {
      expect(Buffer.compare(await reopened.read(256 * K, 64 * K), text)).toBe(0);
    } finally {
      await reopened.close();
    }
  });

  it('packs no compressed data into a freed cluster that a data write took since', async () => {
    // write -c, write -z (frees the compressed cluster), a 512-byte data write that
    // takes that freed cluster, write -c, then the data written again. QEMU packs the
    // second compressed cluster on behind the first one, inside the data cluster, and
    // the last write destroys it (qemu-img check: OFLAG_COPIED, refcount=2; the read
    // fails). Here the data write that takes the freed cluster ends the packing, and
    // everything reads back.
    const path = dir.file('packed-after-free.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', path, '96k');
    const compressed = Buffer.alloc(4 * K, 0x61);
    const data = Buffer.alloc(512, 0x62);
    const image = await openQcow2(path, { writable: true });
    try {
      await image.writeCompressed(0, compressed);
      await image.writeZeroes(0, 4 * K);
      await image.write(4 * K, data);
      await image.writeCompressed(0, compressed);
      await image.write(4 * K, data);
      const map = await image.mapGuestRange(0, 8 * K);
      expect(map.map((m) => m.type)).toEqual(['compressed', 'normal']);
    } finally {
      await image.close();
    }
    await qemuImg('check', '-q', path);
    const reopened = await openQcow2(path);
    try {
      expect((await reopened.read(0, 4 * K)).equals(compressed)).toBe(true);
      expect((await reopened.read(4 * K, 512)).equals(data)).toBe(true);
    } finally {
      await reopened.close();
    }
  });

  it('refuse with READ_ONLY on an image opened read-only', async () => {
    const path = dir.file('read-only.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', path, '1M');
    const image = await openQcow2(path);
    try {
      const cluster = Buffer.alloc(64 * K);
      await expect(image.writeCompressed(0, cluster)).rejects.toMatchObject({ code: 'READ_ONLY' });
      await expect(image.resize(2 << 20)).rejects.toMatchObject({ code: 'READ_ONLY' });
      await expect(image.writeZeroes(0, 64 * K, { unmap: true })).rejects.toMatchObject({
        code: 'READ_ONLY',
      });
    } finally {
      await image.close();
    }
  });

  it('refuse with UNSUPPORTED when a plugged-in write path lacks them, and pass unmap on', async () => {
    const path = dir.file('plugged.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', path, '1M');
    const calls: string[] = [];
    const writePath: Qcow2WritePath = {
      write: async () => {},
      writeZeroes: async (offset, length, options) =>
        void calls.push(`zero ${offset} ${length} unmap=${options?.unmap}`),
      discard: async () => {},
      flush: async () => {},
      close: async () => {},
    };
    const image = await openQcow2(path, { writable: true, writePath: () => writePath });
    try {
      await image.writeZeroes(0, 64 * K, { unmap: true });
      expect(calls).toEqual(['zero 0 65536 unmap=true']);
      await expect(image.writeCompressed(0, Buffer.alloc(64 * K))).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      await expect(image.resize(2 << 20)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    } finally {
      await image.close();
    }
  });
});
