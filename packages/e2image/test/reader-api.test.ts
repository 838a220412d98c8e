import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockIoError, FileDevice } from '@x/blockio';
import { makeTempDir, requirePeer, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  E2imageError,
  Filesystem,
  listDirectory,
  lookupPath,
  readFile,
  readSymlink,
  readXattrs,
  type SuperAndDescriptorLocation,
  superAndDescriptorLocation,
} from '../src/index.js';

/**
 * A small filesystem made by the real mke2fs -d and debugfs: a directory, a file
 * with an xattr, a 100 000-byte file and a symlink (the README's example tree).
 */
let temp: TempDir;
let image: string;
let device: FileDevice;
let fs: Filesystem;

beforeAll(async () => {
  for (const peer of ['mke2fs', 'debugfs']) requirePeer(peer);
  temp = await makeTempDir('e2image-reader-api-');
  const tree = temp.file('tree');
  await mkdir(join(tree, 'docs'), { recursive: true });
  await writeFile(join(tree, 'docs', 'readme.txt'), 'hello from ext4\n');
  await writeFile(join(tree, 'data.bin'), Buffer.alloc(100_000, 7));
  await symlink('docs/readme.txt', join(tree, 'latest'));
  image = temp.file('fs.img');
  await runPeerOk('mke2fs', ['-q', '-t', 'ext4', '-b', '1024', '-d', tree, image, '8M']);
  await runPeerOk('debugfs', ['-w', '-R', 'ea_set /docs/readme.txt user.comment hello', image]);
  device = await FileDevice.open(image);
  fs = await Filesystem.open(device);
});
afterAll(async () => {
  await device?.close();
  await temp?.remove();
});

async function failure(promise: Promise<unknown>): Promise<E2imageError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof E2imageError)) throw new Error(`expected an E2imageError, got ${error}`);
  return error;
}

describe('lookupPath errors name the path inside the filesystem', () => {
  it('NOT_FOUND: the device in path, the filesystem path in structure, the component in the message', async () => {
    const docs = await lookupPath(fs, '/docs');
    const error = await failure(lookupPath(fs, '/docs/missing.txt'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.path).toBe(image);
    expect(error.structure).toBe('path "/docs/missing.txt"');
    expect(error.inode).toBe(docs);
    expect(error.message).toBe(`no entry "missing.txt" in directory "/docs" (inode ${docs})`);
    expect(error.describe()).toContain(`${image}: path "/docs/missing.txt": no entry`);
  });

  it('NOT_A_DIRECTORY: a file in the middle of a path is named with the path', async () => {
    const file = await lookupPath(fs, '/docs/readme.txt');
    const error = await failure(lookupPath(fs, '/docs/readme.txt/more'));
    expect(error.code).toBe('NOT_A_DIRECTORY');
    expect(error.path).toBe(image);
    expect(error.structure).toBe('path "/docs/readme.txt/more"');
    expect(error.inode).toBe(file);
    expect(error.message).toContain('"/docs/readme.txt"');
    expect(error.message).toContain('"more"');
    expect(error.message).toContain('regular file');
  });

  it('NOT_A_DIRECTORY: a symlink in the middle of a path says links are not followed', async () => {
    const error = await failure(lookupPath(fs, '/latest/x'));
    expect(error.code).toBe('NOT_A_DIRECTORY');
    expect(error.structure).toBe('path "/latest/x"');
    expect(error.message).toContain('"/latest"');
    expect(error.message).toContain('does not follow links');
  });
});

describe('listDirectory on something that is not a directory', () => {
  it('NOT_A_DIRECTORY names the device in path and the inode in structure, as lookupPath does', async () => {
    const file = await lookupPath(fs, '/docs/readme.txt');
    for (const argument of [file, await fs.readInode(file)]) {
      const error = await failure(listDirectory(fs, argument));
      expect(error.code).toBe('NOT_A_DIRECTORY');
      expect(error.path).toBe(image);
      expect(error.inode).toBe(file);
      expect(error.structure).toBe(`inode ${file}`);
      expect(error.message).toContain('regular file');
      expect(error.describe()).toBe(
        `${image}: inode ${file}: cannot list inode ${file}: it is a regular file, not a directory [NOT_A_DIRECTORY]`,
      );
    }
    const link = await failure(listDirectory(fs, await lookupPath(fs, '/latest')));
    expect(link).toMatchObject({ code: 'NOT_A_DIRECTORY', path: image });
    expect(link.message).toContain('symbolic link');
  });
});

describe('readFile arguments', () => {
  async function argumentFailure(promise: Promise<unknown>): Promise<BlockIoError> {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    if (!(error instanceof BlockIoError)) throw new Error(`expected a BlockIoError, got ${error}`);
    return error;
  }

  it.each([
    ['offset', -1, 'OUT_OF_RANGE'],
    ['offset', 1.5, 'OUT_OF_RANGE'],
    ['offset', Number.NaN, 'OUT_OF_RANGE'],
    ['offset', 2 ** 53, 'UNSAFE_INTEGER'],
    ['length', -1, 'OUT_OF_RANGE'],
    ['length', 0.5, 'OUT_OF_RANGE'],
    ['length', Number.NaN, 'OUT_OF_RANGE'],
    ['length', Number.POSITIVE_INFINITY, 'UNSAFE_INTEGER'],
    ['maxBytes', -1, 'OUT_OF_RANGE'],
    ['maxBytes', Number.NaN, 'OUT_OF_RANGE'],
  ] as const)('%s %d is %s naming the device and the inode', async (name, value, code) => {
    const data = await lookupPath(fs, '/data.bin');
    for (const argument of [data, await fs.readInode(data)]) {
      const error = await argumentFailure(readFile(fs, argument, { [name]: value }));
      expect(error.code).toBe(code);
      expect(error.path).toBe(image);
      expect(error.structure).toBe(`inode ${data}`);
      expect(error.message).toContain(`readFile ${name}`);
      expect(error.message).toContain(String(value));
    }
  });

  it('an offset at or past the end gives an empty buffer; a length past the end stops at it', async () => {
    const data = await lookupPath(fs, '/data.bin');
    expect((await readFile(fs, data, { offset: 100_000 })).length).toBe(0);
    expect((await readFile(fs, data, { offset: 2 ** 40, length: 10 })).length).toBe(0);
    expect((await readFile(fs, data, { offset: 99_990, length: 1000 })).length).toBe(10);
    expect((await readFile(fs, data, { offset: 5, length: 0 })).length).toBe(0);
  });
});

describe('reader error codes', () => {
  it('readSymlink on a regular file is NOT_A_SYMLINK', async () => {
    const file = await lookupPath(fs, '/docs/readme.txt');
    const error = await failure(readSymlink(fs, file));
    expect(error.code).toBe('NOT_A_SYMLINK');
    expect(error.inode).toBe(file);
    expect(await readSymlink(fs, await lookupPath(fs, '/latest'))).toBe('docs/readme.txt');
  });

  it('readFile over maxBytes is TOO_LARGE; a range within it reads', async () => {
    const data = await lookupPath(fs, '/data.bin');
    const error = await failure(readFile(fs, data, { maxBytes: 99_999 }));
    expect(error.code).toBe('TOO_LARGE');
    expect(error.inode).toBe(data);
    const part = await readFile(fs, data, { offset: 99_000, maxBytes: 1000 });
    expect(part.equals(Buffer.alloc(1000, 7))).toBe(true);
  });
});

describe('reader arguments', () => {
  it('readXattrs takes an inode number as well as an Inode', async () => {
    const file = await lookupPath(fs, '/docs/readme.txt');
    const byNumber = await readXattrs(fs, file);
    const byInode = await readXattrs(fs, await fs.readInode(file));
    expect(byNumber).toEqual(byInode);
    expect(byNumber.find((xattr) => xattr.name === 'user.comment')?.value.toString()).toBe('hello');
  });

  it('readFile stops with ABORTED when its signal is aborted', async () => {
    const data = await lookupPath(fs, '/data.bin');
    const controller = new AbortController();
    controller.abort();
    const error = await readFile(fs, data, { signal: controller.signal }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: 'ABORTED', path: image });
    expect((await readFile(fs, data, { signal: new AbortController().signal })).length).toBe(
      100_000,
    );
  });

  it('exports the SuperAndDescriptorLocation type of superAndDescriptorLocation', () => {
    const location: SuperAndDescriptorLocation = superAndDescriptorLocation(fs, 1);
    expect(location.superBlock).toBe(8193); // group 1 of a 1 KiB-block filesystem
  });
});
