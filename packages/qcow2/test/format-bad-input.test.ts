import { copyFile } from 'node:fs/promises';
import { FileDevice } from '@x/blockio';
import { makeTempDir, pokeU32BE, pokeU64BE } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Error, readQcow2Metadata } from '../src/index.js';
import { qemuImage } from './support/qemu-fixtures.js';

let pristine: string;
const temp = await makeTempDir('qcow2-bad-');

beforeAll(async () => {
  pristine = await qemuImage('bad-input-base', { size: '64M', commands: ['write -P 0xaa 0 1M'] });
});
afterAll(() => temp.remove());

/** Copies the pristine image, applies `poke`, and returns the error reading it gives. */
async function errorAfter(
  name: string,
  poke: (path: string) => Promise<void>,
): Promise<Qcow2Error> {
  const path = temp.file(`${name}.qcow2`);
  await copyFile(pristine, path);
  await poke(path);
  const file = await FileDevice.open(path);
  try {
    await readQcow2Metadata(file);
  } catch (error) {
    expect(error).toBeInstanceOf(Qcow2Error);
    return error as Qcow2Error;
  } finally {
    await file.close();
  }
  throw new Error('expected readQcow2Metadata to fail');
}

describe('readQcow2Metadata refuses bad headers with typed errors', () => {
  it('names a file that is not qcow2', async () => {
    const error = await errorAfter('magic', (p) => pokeU32BE(p, 0, 0x7f454c46));
    expect(error.code).toBe('NOT_QCOW2');
    expect(error.offset).toBe(0);
    expect(error.path).toMatch(/magic\.qcow2$/);
  });

  it('refuses cluster_bits outside 9..21', async () => {
    const error = await errorAfter('cluster-bits', (p) => pokeU32BE(p, 20, 22));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.offset).toBe(20);
  });

  it('refuses an L1 table larger than 32 MiB before allocating it', async () => {
    const error = await errorAfter('l1-size', (p) => pokeU32BE(p, 36, 0x10000000));
    expect(error.code).toBe('TOO_LARGE');
  });

  it('refuses a refcount table larger than 8 MiB', async () => {
    const error = await errorAfter('reftable', (p) => pokeU32BE(p, 56, 0x1000));
    expect(error.code).toBe('TOO_LARGE');
  });

  it('names unknown incompatible features', async () => {
    const error = await errorAfter('incompat', (p) => pokeU64BE(p, 72, 1n << 40n));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.message).toMatch(/incompatible bit 40/);
  });

  it('detects and refuses encryption', async () => {
    const error = await errorAfter('crypt', (p) => pokeU32BE(p, 32, 2));
    expect(error.code).toBe('ENCRYPTED');
  });

  it('refuses an absurd number of snapshots', async () => {
    const error = await errorAfter('snapshots', (p) => pokeU32BE(p, 60, 0x7fffffff));
    expect(error.code).toBe('TOO_LARGE');
  });

  it('a snapshot table past the end of the file: zeros when reading (as QEMU), refused for writing', async () => {
    const path = temp.file('snapshot-offset.qcow2');
    await copyFile(pristine, path);
    await pokeU32BE(path, 60, 1);
    await pokeU64BE(path, 64, 1n << 40n);
    const file = await FileDevice.open(path);
    try {
      const { snapshots } = await readQcow2Metadata(file);
      expect(snapshots).toMatchObject([{ id: '', name: '', l1Size: 0 }]);
      await expect(readQcow2Metadata(file, { writable: true })).rejects.toMatchObject({
        code: 'CORRUPT',
        structure: 'snapshot table',
      });
    } finally {
      await file.close();
    }
  });

  it('reports an unaligned L1 table offset', async () => {
    const error = await errorAfter('l1-offset', async (p) => pokeU64BE(p, 40, 0x30200n));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/L1 table/);
  });

  it('refuses a virtual size beyond 2^53', async () => {
    const path = temp.file('size.qcow2');
    await copyFile(pristine, path);
    await pokeU64BE(path, 24, 1n << 60n);
    const file = await FileDevice.open(path);
    await expect(readQcow2Metadata(file)).rejects.toMatchObject({ code: 'UNSAFE_INTEGER' });
    await file.close();
  });
});
