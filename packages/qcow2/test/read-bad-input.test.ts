import { copyFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, pokeBytes, pokeU64BE, readU64BE, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQcow2, Qcow2Error, type Qcow2Image } from '../src/index.js';
import { qemuImage, qemuImg } from './support/qemu-fixtures.js';
import { deviceHash } from './support/raw-compare.js';
import { convertedImage } from './support/read-fixtures.js';

const OFFSET_MASK = 0x00fffffffffffe00n;
const temp = await makeTempDir('qcow2-read-bad-');
let pristine: string;
let compressed: string;
let zstd: string;
let extl2: string;

beforeAll(async () => {
  pristine = await qemuImage('read-bad-base', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M', 'write -c -P 0xbb 2M 64k'],
  });
  compressed = await convertedImage('converted-zlib', { compress: true });
  zstd = await convertedImage('converted-zstd', {
    compress: true,
    createOptions: 'compression_type=zstd',
  });
  extl2 = await qemuImage('read-bad-extl2', {
    size: '16M',
    options: 'extended_l2=on,cluster_size=128k',
    commands: ['write -P 1 4k 4k'],
  });
});
afterAll(() => temp.remove());

/** A poked copy of `source`. */
async function poked(source: string, name: string, poke: (path: string) => Promise<void>) {
  const path = temp.file(`${name}.qcow2`);
  await copyFile(source, path);
  await poke(path);
  return path;
}

/** The error reading the whole image gives (open included). */
async function readError(path: string, options: Parameters<typeof openQcow2>[1] = {}) {
  let image: Qcow2Image | undefined;
  try {
    image = await openQcow2(path, options);
    await deviceHash(image);
  } catch (error) {
    expect(error).toBeInstanceOf(Qcow2Error);
    return error as Qcow2Error;
  } finally {
    await image?.close();
  }
  throw new Error('expected the read to fail');
}

const l1Offset = async (path: string) => Number(await readU64BE(path, 40));
const firstL2 = async (path: string) =>
  Number((await readU64BE(path, await l1Offset(path))) & OFFSET_MASK);

describe('bad tables give typed errors naming file, offset and structure', () => {
  it('L1 entry pointing past the end of the file', async () => {
    const path = await poked(pristine, 'l1-beyond', async (p) =>
      pokeU64BE(p, await l1Offset(p), (1n << 63n) | (1n << 40n)),
    );
    const error = await readError(path);
    expect(error.code).toBe('CORRUPT');
    expect(error.offset).toBe(await l1Offset(path));
    expect(error.structure).toBe('L1 table entry 0');
    expect(error.path).toBe(path);
  });

  it('unaligned L1 entry', async () => {
    const path = await poked(pristine, 'l1-unaligned', async (p) => {
      const at = await l1Offset(p);
      await pokeU64BE(p, at, (await readU64BE(p, at)) + 512n);
    });
    const error = await readError(path);
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/not cluster aligned/);
  });

  it('unaligned L2 entry', async () => {
    const path = await poked(pristine, 'l2-unaligned', async (p) => {
      const at = (await firstL2(p)) + 8 * 3;
      await pokeU64BE(p, at, (await readU64BE(p, at)) + 512n);
    });
    const error = await readError(path);
    expect(error.code).toBe('CORRUPT');
    expect(error.offset).toBe((await firstL2(path)) + 24);
    expect(error.structure).toMatch(/^L2 table at 0x[0-9a-f]+ entry 3$/);
  });

  it('L2 entry pointing past the end of the file', async () => {
    const path = await poked(pristine, 'l2-beyond', async (p) =>
      pokeU64BE(p, (await firstL2(p)) + 8, (1n << 63n) | (1n << 44n)),
    );
    const error = await readError(path);
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/past the end/);
    expect(error.offset).toBe((await firstL2(path)) + 8);
  });

  it('compressed cluster that does not inflate', async () => {
    const path = await poked(pristine, 'deflate-garbage', async (p) => {
      const entry = await readU64BE(p, (await firstL2(p)) + 8 * 32); // guest 2 MiB
      const dataOffset = Number(entry & ((1n << 54n) - 1n));
      await pokeBytes(p, dataOffset, Buffer.alloc(64, 0xff));
    });
    const error = await readError(path);
    expect(error.code).toBe('DECOMPRESS_FAILED');
    expect(error.structure).toBe('compressed cluster');
  });

  it('compressed cluster whose sector count is too short to hold a cluster', async () => {
    const path = await poked(compressed, 'deflate-short', async (p) => {
      const l2 = await firstL2(p);
      for (let index = 0; index < 128; index++) {
        const entry = await readU64BE(p, l2 + index * 8);
        if ((entry & (1n << 62n)) === 0n) continue;
        // Sector field (bits 54..61 for 64 KiB clusters) to 0: one sector only.
        await pokeU64BE(p, l2 + index * 8, entry & ~(0xffn << 54n));
        return;
      }
      throw new Error('no compressed cluster found');
    });
    const error = await readError(path);
    expect(error.code).toBe('DECOMPRESS_FAILED');
  });

  it('zstd cluster with a damaged frame', async () => {
    const path = await poked(zstd, 'zstd-garbage', async (p) => {
      const l2 = await firstL2(p);
      for (let index = 0; index < 128; index++) {
        const entry = await readU64BE(p, l2 + index * 8);
        if ((entry & (1n << 62n)) === 0n) continue;
        const dataOffset = Number(entry & ((1n << 54n) - 1n));
        await pokeBytes(p, dataOffset + 4, Buffer.from([0xff, 0xff, 0xff, 0xff]));
        return;
      }
      throw new Error('no compressed cluster found');
    });
    const error = await readError(path);
    expect(error.code).toBe('DECOMPRESS_FAILED');
  });

  it('zstd cluster whose compressed block is damaged: libzstd refuses it, the cluster is named', async () => {
    let dataOffset = 0;
    let guestOffset = 0;
    const path = await poked(zstd, 'zstd-block', async (p) => {
      const l2 = await firstL2(p);
      for (let index = 0; index < 128; index++) {
        const entry = await readU64BE(p, l2 + index * 8);
        if ((entry & (1n << 62n)) === 0n) continue;
        dataOffset = Number(entry & ((1n << 54n) - 1n));
        guestOffset = index * 65536;
        // Past the frame and block headers (9 bytes for QEMU's 64 KiB frames):
        // the header still parses, the compressed block does not decode.
        await pokeBytes(p, dataOffset + 12, Buffer.alloc(48, 0xff));
        return;
      }
      throw new Error('no compressed cluster found');
    });
    const error = await readError(path);
    expect(error).toMatchObject({
      code: 'DECOMPRESS_FAILED',
      path,
      offset: dataOffset,
      structure: 'compressed cluster',
    });
    expect(error.message).toContain(`guest offset 0x${guestOffset.toString(16)}`);
    // The same through convert's worker pool.
    const { convertToRaw } = await import('../src/index.js');
    await expect(
      convertToRaw(path, temp.file('zstd-block.raw'), { sync: false }),
    ).rejects.toMatchObject({ code: 'DECOMPRESS_FAILED', path, offset: dataOffset });
  });

  it('extended L2 subcluster marked both allocated and zero', async () => {
    const path = await poked(extl2, 'extl2-both', async (p) => {
      const l2 = await firstL2(p);
      const bitmap = await readU64BE(p, l2 + 8);
      await pokeU64BE(p, l2 + 8, bitmap | ((bitmap & 0xffffffffn) << 32n));
    });
    const error = await readError(path);
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/both allocated and zero/);
  });
});

describe('backing files and policy', () => {
  it('refuses backing files under the default deny policy, and data files too', async () => {
    const dir = temp.file('deny');
    await runPeerOk('mkdir', ['-p', dir]);
    await qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1M');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'base.qcow2',
      '-F',
      'qcow2',
      join(dir, 'top.qcow2'),
    );
    const error = await readError(join(dir, 'top.qcow2'));
    expect(error.code).toBe('BACKING_DENIED');
    expect(error.message).toMatch(/base\.qcow2/);
    const ignored = await openQcow2(join(dir, 'top.qcow2'), { backingPolicy: 'ignore' });
    expect(ignored.backing).toBeUndefined();
    await ignored.close();
  });

  it('detects a cycle: a -> b -> a, and an image that is its own backing file', async () => {
    const dir = temp.file('loop');
    await runPeerOk('mkdir', ['-p', dir]);
    const a = join(dir, 'a.qcow2');
    const b = join(dir, 'b.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', a, '1M');
    await qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', 'a.qcow2', '-F', 'qcow2', b, '1M');
    await qemuImg('rebase', '-q', '-u', '-b', 'b.qcow2', '-F', 'qcow2', a);
    const error = await readError(a, { backingPolicy: 'allow' });
    expect(error.code).toBe('BACKING_LOOP');
    const self = join(dir, 'self.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', self, '1M');
    await qemuImg('rebase', '-q', '-u', '-b', 'self.qcow2', '-F', 'qcow2', self);
    expect((await readError(self, { backingPolicy: 'allow' })).code).toBe('BACKING_LOOP');
  });

  it('refuses QEMU protocol names as backing files', async () => {
    const path = temp.file('protocol.qcow2');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-u',
      '-b',
      'nbd:localhost:10809',
      '-F',
      'raw',
      path,
      '1M',
    );
    const error = await readError(path, { backingPolicy: 'allow' });
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.structure).toBe('backing file');
  });
});

describe('images that change while being read', () => {
  it('a file that shrinks under us gives CHANGED', async () => {
    const path = await poked(pristine, 'shrinks', async () => {});
    const image = await openQcow2(path);
    try {
      await truncate(path, 4 * 65536);
      const error = await image.read(0, 1 << 20).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Qcow2Error);
      expect((error as Qcow2Error).code).toBe('CHANGED');
      await expect(image.checkUnchanged()).rejects.toMatchObject({ code: 'CHANGED' });
    } finally {
      await image.close();
    }
  });

  it('a header rewritten under us gives CHANGED from checkUnchanged', async () => {
    const path = await poked(pristine, 'header-changes', async () => {});
    const image = await openQcow2(path);
    try {
      await image.checkUnchanged();
      await pokeU64BE(path, 24, 128n << 20n);
      await expect(image.checkUnchanged()).rejects.toMatchObject({ code: 'CHANGED', offset: 0 });
    } finally {
      await image.close();
    }
  });
});

describe('snapshots', () => {
  it('NO_SUCH_SNAPSHOT names the snapshots the image has', async () => {
    const error = await readError(pristine, { snapshot: 'nope' });
    expect(error.code).toBe('NO_SUCH_SNAPSHOT');
    expect(error.message).toMatch(/none/);
  });
});
