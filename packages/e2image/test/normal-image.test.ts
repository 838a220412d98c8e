import { access, copyFile, readFile } from 'node:fs/promises';
import { FileDevice, MemoryDevice } from '@x/blockio';
import {
  makeTempDir,
  pokeBytes,
  requirePeer,
  runPeer,
  runPeerOk,
  type TempDir,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  Filesystem,
  imageHeaderStruct,
  installNormalImageFile,
  superblockStruct,
  writeNormalImage,
  writeNormalImageFile,
} from '../src/index.js';
import { buildFixture, MATRIX } from './support/fixtures.js';

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('e2image-normal-');
});
afterAll(async () => {
  await temp.remove();
});

/**
 * Header fields that depend on when and where the image was made. fs_device_name is the
 * source path as given, and the peer's image was made under the fixture's temporary build
 * directory: checked on its own below.
 */
const VOLATILE_HEADER_FIELDS = [
  'fs_hostname',
  'fs_device_name',
  'image_device',
  'image_inode',
  'image_time_lo',
  'image_time_hi',
] as const;

function maskHeader(image: Buffer): Buffer {
  const copy = Buffer.from(image);
  for (const name of VOLATILE_HEADER_FIELDS) {
    const field = imageHeaderStruct.fields.find((f) => f.name === name);
    if (!field) throw new Error(name);
    copy.fill(0, field.offset, field.offset + field.type.size);
  }
  return copy;
}

/** Primary superblock fields ext2fs_close stamps on every write. */
function maskSuperblock(image: Buffer): Buffer {
  const copy = Buffer.from(image);
  for (const name of ['s_wtime', 's_wtime_hi', 's_kbytes_written', 's_checksum'] as const) {
    const field = superblockStruct.fields.find((f) => f.name === name);
    if (!field) throw new Error(name);
    copy.fill(0, 1024 + field.offset, 1024 + field.offset + field.type.size);
  }
  return copy;
}

async function writeOurs(image: string, out: string): Promise<void> {
  const device = await FileDevice.open(image);
  try {
    await writeNormalImageFile(await Filesystem.open(device), out, { deviceName: image });
  } finally {
    await device.close();
  }
}

describe.each(MATRIX.map((recipe) => [recipe.name, recipe] as const))('%s', (name, recipe) => {
  it('normal image equals e2fsprogs normal image apart from time, host and image-file identity', async () => {
    const fixture = await buildFixture(recipe);
    const out = temp.file(`${name}.e2i`);
    await writeOurs(fixture.image, out);
    const [ours, theirs] = await Promise.all([readFile(out), readFile(fixture.peerNormal)]);
    expect(ours.length).toBe(theirs.length);
    expect(maskHeader(ours).equals(maskHeader(theirs))).toBe(true);
    // e2fsprogs keeps the first 63 bytes of the source path and a NUL.
    const nameField = imageHeaderStruct.fields.find((f) => f.name === 'fs_device_name');
    if (!nameField) throw new Error('fs_device_name');
    const recorded = ours.subarray(nameField.offset, nameField.offset + nameField.type.size);
    const expected = Buffer.alloc(nameField.type.size);
    Buffer.from(fixture.image, 'latin1').copy(expected, 0, 0, nameField.type.size - 1);
    expect(recorded.equals(expected)).toBe(true);
    // dumpe2fs reads it as an image file.
    const dump = await runPeerOk('dumpe2fs', ['-i', out]);
    expect(dump.stdout).toContain('Group 0:');
  });

  it('our normal image installed by e2fsprogs e2image -I gives a filesystem e2fsck -fn accepts', async () => {
    const fixture = await buildFixture(recipe);
    const ours = temp.file(`${name}-install.e2i`);
    await writeOurs(fixture.image, ours);
    const target = temp.file(`${name}-peer-installed.img`);
    await copyFile(fixture.image, target);
    await runPeerOk('e2image', ['-I', target, ours]);
    const check = await runPeer('e2fsck', ['-fn', target]);
    expect(check.code, check.stdout).toBe(0);
  });

  it('-I restores wiped inode tables exactly like e2fsprogs e2image -I', async () => {
    const fixture = await buildFixture(recipe);
    const damaged = temp.file(`${name}-damaged.img`);
    await copyFile(fixture.image, damaged);
    // Wipe group 0's inode table and both bitmaps: the fs is unusable until installed.
    const device = await FileDevice.open(damaged);
    const fs = await Filesystem.open(device);
    const group0 = fs.groupDescriptor(0);
    const blockSize = fs.blockSize;
    const tableBytes = fs.inodeBlocksPerGroup * blockSize;
    await device.close();
    await pokeBytes(damaged, group0.inodeTable * blockSize, Buffer.alloc(tableBytes));
    await pokeBytes(damaged, group0.blockBitmap * blockSize, Buffer.alloc(blockSize));
    await pokeBytes(damaged, group0.inodeBitmap * blockSize, Buffer.alloc(blockSize));
    const theirs = temp.file(`${name}-theirs.img`);
    const ours = temp.file(`${name}-ours.img`);
    await copyFile(damaged, theirs);
    await copyFile(damaged, ours);
    await runPeerOk('e2image', ['-I', theirs, fixture.peerNormal]);
    await installNormalImageFile(ours, fixture.peerNormal);
    const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
    expect(maskSuperblock(a).equals(maskSuperblock(b))).toBe(true);
    const check = await runPeer('e2fsck', ['-fn', ours]);
    expect(check.code, check.stdout).toBe(0);
  });
});

/** A target that counts the writes it is asked for. */
class CountingDevice extends MemoryDevice {
  writes = 0;
  override write(offset: number, data: Uint8Array): Promise<void> {
    this.writes++;
    return super.write(offset, data);
  }
}

describe('a filesystem too big for a normal image', () => {
  it('is refused with TOO_LARGE before anything is written', async () => {
    requirePeer('mke2fs');
    // 5 GiB of inode tables (5 Mi inodes of 1 KiB) in a sparse 20 GiB file: the
    // image's bitmap offsets would not fit the header's 32-bit fields.
    const image = temp.file('huge-inode-tables.img');
    await runPeerOk('mke2fs', [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-b',
      '4096',
      '-I',
      '1024',
      '-i',
      '4096',
      '-O',
      '^has_journal',
      '-E',
      'lazy_itable_init=1,nodiscard',
      image,
      '20G',
    ]);
    const device = await FileDevice.open(image);
    try {
      const fs = await Filesystem.open(device);
      expect(fs.inodeBlocksPerGroup * fs.blockSize * fs.groupCount).toBeGreaterThan(2 ** 32);
      const target = new CountingDevice(0, { name: 'huge.e2i', zeroExtends: true });
      const error = await writeNormalImage(fs, target).catch((caught: unknown) => caught);
      expect(error).toMatchObject({
        code: 'TOO_LARGE',
        path: 'huge.e2i',
        structure: 'e2image header',
      });
      expect(target.writes).toBe(0);

      const out = temp.file('huge.e2i');
      const fromFile = await writeNormalImageFile(fs, out).catch((caught: unknown) => caught);
      expect(fromFile).toMatchObject({ code: 'TOO_LARGE' });
      await expect(access(out)).rejects.toThrow();
      await expect(access(`${out}.partial`)).rejects.toThrow();
    } finally {
      await device.close();
    }
  });
});

describe('writeNormalImageFile options', () => {
  it('sync (default true) decides whether the image is fsynced, like the raw and QCOW2 writers', async () => {
    requirePeer('mke2fs');
    const image = temp.file('sync-source.img');
    await runPeerOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', image, '4M']);
    const device = await FileDevice.open(image);
    const flush = vi.spyOn(FileDevice.prototype, 'flush');
    try {
      const fs = await Filesystem.open(device);
      await writeNormalImageFile(fs, temp.file('no-sync.e2i'), { sync: false });
      expect(flush).not.toHaveBeenCalled();
      await writeNormalImageFile(fs, temp.file('sync.e2i'), { sync: undefined });
      expect(flush).toHaveBeenCalled();
      const [a, b] = await Promise.all([
        readFile(temp.file('no-sync.e2i')),
        readFile(temp.file('sync.e2i')),
      ]);
      expect(maskHeader(a).equals(maskHeader(b))).toBe(true);
    } finally {
      flush.mockRestore();
      await device.close();
    }
  });
});
