import { copyFile, mkdir, open, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockIoError, FileDevice } from '@x/blockio';
import {
  cachedFixture,
  filesEqual,
  makeTempDir,
  pokeBytes,
  runPeer,
  runPeerOk,
  type TempDir,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type E2imageWarning,
  Filesystem,
  writeQcow2Image,
  writeRawImageFile,
} from '../src/index.js';
import { buildSmallFixtures, debugfsWrite, pokeU16, sourceState } from './support/damage.js';
import { PACKAGE_ROOT } from './support/fixtures.js';

/*
 * The kinds of damage e2fsck's own test suite exercises, each made on a small
 * filesystem from mke2fs (debugfs -w or byte pokes), on which e2fsprogs'
 * e2image carries on: our -r must be the same bytes as `e2image -r`, and our -Q
 * must expand (with `e2image -r`) to those bytes too. What e2image only warns
 * about (or says nothing about) we report as a typed warning.
 */

const MKFS_ENV = { ...process.env, LC_ALL: 'C', E2FSPROGS_FAKE_TIME: '1700000000' };

interface Images {
  /** ext4, 1 KiB blocks, 4 groups of 1024 blocks, htree /bigdir, an xattr block on /d/f2. */
  ext4: string;
  /** ext4 with inline_data: inline directory /dd, inline file /small. */
  inline: string;
  /** ext2 whose /big.bin (inode 12) has indirect and double-indirect blocks. */
  ext2: string;
}

async function writeTree(root: string): Promise<void> {
  await mkdir(join(root, 'd'), { recursive: true });
  await mkdir(join(root, 'bigdir'));
  for (let i = 1; i <= 20; i++) await writeFile(join(root, 'd', `f${i}`), `file ${i}\n`);
  for (let i = 0; i < 150; i++) {
    await writeFile(join(root, 'bigdir', `entry_${i}_${'n'.repeat(i % 30)}`), '');
  }
  // One 1 KiB block every other block: 20 extents, so the root indexes a leaf block.
  const sparse = await open(join(root, 'sparse.bin'), 'w');
  try {
    for (let i = 0; i < 20; i++) await sparse.write(Buffer.alloc(1024, i + 1), 0, 1024, i * 2048);
  } finally {
    await sparse.close();
  }
  await symlink('x'.repeat(100), join(root, 'slowlink'));
}

async function buildImages(): Promise<Images> {
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    'damage-kinds',
    JSON.stringify({ version: 1 }),
    async (dir) => {
      const tree = join(dir, 'tree');
      await writeTree(tree);
      const ext4 = join(dir, 'ext4.img');
      await runPeerOk(
        'mke2fs',
        ['-q', '-F', '-t', 'ext4', '-b', '1024', '-g', '1024', '-N', '256', '-d', tree, ext4, '4M'],
        { env: MKFS_ENV },
      );
      // e2fsck -D indexes /bigdir (mke2fs -d writes plain directories).
      const indexed = await runPeer('e2fsck', ['-fyD', ext4], { env: MKFS_ENV });
      if (indexed.code > 1) throw new Error(`e2fsck -fyD: ${indexed.stdout}${indexed.stderr}`);
      const value = join(dir, 'xattr-value');
      await writeFile(value, 'v'.repeat(700));
      await debugfsWrite(ext4, `ea_set -f ${value} /d/f2 user.big`);
      await runPeerOk('e2fsck', ['-fn', ext4]);

      const inlineTree = join(dir, 'inline-tree');
      await mkdir(join(inlineTree, 'dd'), { recursive: true });
      await writeFile(join(inlineTree, 'dd', 'a'), 'x\n');
      await writeFile(join(inlineTree, 'small'), 'hi\n');
      const inline = join(dir, 'inline.img');
      await runPeerOk(
        'mke2fs',
        ['-q', '-F', '-t', 'ext4', '-O', 'inline_data', '-b', '1024', '-N', '128'].concat([
          '-d',
          inlineTree,
          inline,
          '4M',
        ]),
        { env: MKFS_ENV },
      );
      await runPeerOk('e2fsck', ['-fn', inline]);
    },
  );
  const small = await buildSmallFixtures();
  return {
    ext4: join(directory, 'ext4.img'),
    inline: join(directory, 'inline.img'),
    ext2: small.ext2,
  };
}

/** debugfs -R output (read only). */
async function debugfsRead(image: string, command: string): Promise<string> {
  return (await runPeerOk('debugfs', ['-R', command, image])).stdout;
}

async function inodeNumber(image: string, path: string): Promise<number> {
  const match = /Inode: (\d+)/.exec(await debugfsRead(image, `stat ${path}`));
  if (!match) throw new Error(`no inode for ${path}`);
  return Number(match[1]);
}

/** The extent tree's first index block of a depth-1 file ("(ETB0):N"). */
async function extentLeafBlock(image: string, path: string): Promise<number> {
  const match = /\(ETB0\):(\d+)/.exec(await debugfsRead(image, `stat ${path}`));
  if (!match) throw new Error(`${path} has no extent tree block`);
  return Number(match[1]);
}

async function physicalBlock(image: string, path: string, logical: number): Promise<number> {
  return Number((await debugfsRead(image, `bmap ${path} ${logical}`)).trim());
}

async function freeBlocks(image: string, count: number, from: number): Promise<number[]> {
  const text = await debugfsRead(image, `ffb ${count} ${from}`);
  return (/Free blocks found: ([\d ]+)/.exec(text)?.[1] ?? '').trim().split(/\s+/).map(Number);
}

/**
 * Index nodes in `blocks` (depths blocks.length .. 1), each with one entry
 * pointing at the next, the last at `leaf`: a chain that deepens a tree.
 */
async function writeIndexChain(image: string, blocks: number[], leaf: number): Promise<void> {
  for (const [i, block] of blocks.entries()) {
    const node = Buffer.alloc(1024);
    node.writeUInt16LE(0xf30a, 0);
    node.writeUInt16LE(1, 2); // eh_entries
    node.writeUInt16LE(84, 4); // eh_max for a 1 KiB block
    node.writeUInt16LE(blocks.length - i, 6); // eh_depth
    node.writeUInt32LE(blocks[i + 1] ?? leaf, 12 + 4); // ei_leaf_lo
    await pokeBytes(image, block * 1024, node);
  }
}

let temp: TempDir;
let images: Images;
beforeAll(async () => {
  temp = await makeTempDir('e2image-kinds-');
  images = await buildImages();
});
afterAll(async () => {
  await temp.remove();
});

let counter = 0;

interface Options {
  superblock?: number;
  blockSize?: number;
}

async function openFs(image: string, options: Options, warnings: E2imageWarning[]) {
  const device = await FileDevice.open(image);
  try {
    return {
      device,
      fs: await Filesystem.open(device, { ...options, onWarning: (w) => warnings.push(w) }),
    };
  } catch (error) {
    await device.close();
    throw error;
  }
}

/**
 * e2image -r carries on; so do we: -r the same bytes, -Q the same bytes once
 * e2image -r expands it, the source untouched. Returns our warnings' codes.
 */
async function expectSameAsE2image(image: string, options: Options = {}): Promise<string[]> {
  const n = ++counter;
  const theirs = temp.file(`theirs-${n}.raw`);
  const ours = temp.file(`ours-${n}.raw`);
  const oursQcow2 = temp.file(`ours-${n}.qcow2`);
  const expanded = temp.file(`ours-${n}-expanded.raw`);
  const extra =
    options.superblock === undefined
      ? []
      : ['-b', String(options.superblock), '-B', String(options.blockSize)];
  const before = await sourceState(image);
  const peer = await runPeer('e2image', ['-r', ...extra, image, theirs]);
  expect(peer.code, `${peer.stderr}${peer.stdout}`).toBe(0);

  const warnings: E2imageWarning[] = [];
  for (const write of [
    (fs: Filesystem) => writeRawImageFile(fs, ours),
    (fs: Filesystem) => writeQcow2Image(fs, oursQcow2),
  ]) {
    const { device, fs } = await openFs(image, options, warnings);
    try {
      await write(fs);
    } catch (error) {
      // A typed error would be a refusal where e2image carries on: show it.
      if (error instanceof BlockIoError) expect.fail(`we refused: ${error.describe()}`);
      throw error;
    } finally {
      await device.close();
    }
  }
  expect(await sourceState(image)).toEqual(before);
  expect(await filesEqual(ours, theirs)).toBe(true);
  await runPeerOk('e2image', ['-r', oursQcow2, expanded]);
  expect(await filesEqual(expanded, theirs)).toBe(true);
  return [...new Set(warnings.map((w) => w.code))];
}

async function damaged(base: keyof Images, damage: (image: string) => Promise<void>) {
  const image = temp.file(`damaged-${++counter}.img`);
  await copyFile(images[base], image);
  await damage(image);
  return image;
}

describe('extent trees', () => {
  it('deeper than the format allows (depth 7): e2image images it; so do we, with a warning', async () => {
    const image = await damaged('ext4', async (path) => {
      const ino = await inodeNumber(path, '/sparse.bin');
      const leaf = await extentLeafBlock(path, '/sparse.bin');
      const chain = await freeBlocks(path, 6, 3000);
      await writeIndexChain(path, chain, leaf);
      // Root: depth 7 (eh_max 4), its one index entry at the chain's head.
      await debugfsWrite(path, `sif <${ino}> block[1] ${(7 << 16) | 4}`);
      await debugfsWrite(path, `sif <${ino}> block[4] ${chain[0]}`);
    });
    expect(await expectSameAsE2image(image)).toContain('EXTENT_TREE_DEPTH');
  });

  it("a node whose eh_depth disagrees with its parent's: walked by level, as libext2fs does", async () => {
    const image = await damaged('ext4', async (path) => {
      const ino = await inodeNumber(path, '/sparse.bin');
      const leaf = await extentLeafBlock(path, '/sparse.bin');
      const [middle] = await freeBlocks(path, 1, 3000);
      await writeIndexChain(path, [middle as number], leaf);
      await pokeU16(path, (middle as number) * 1024 + 6, 5); // claims depth 5, sits at 1
      await debugfsWrite(path, `sif <${ino}> block[1] ${(2 << 16) | 4}`);
      await debugfsWrite(path, `sif <${ino}> block[4] ${middle}`);
    });
    expect(await expectSameAsE2image(image)).toContain('EXTENT_TREE_DEPTH');
  });

  it('a root header with a bad magic: e2image skips the inode; so do we', async () => {
    const image = await damaged('ext4', async (path) => {
      const ino = await inodeNumber(path, '/sparse.bin');
      await debugfsWrite(path, `sif <${ino}> block[0] 0x0001f30b`);
    });
    expect(await expectSameAsE2image(image)).toContain('EXTENT_TREE_SKIPPED');
  });

  it('a directory extent out of range: ignored like e2image ignores it', async () => {
    const image = await damaged('ext4', async (path) => {
      await debugfsWrite(path, 'sif /d block[5] 9999999');
    });
    expect(await expectSameAsE2image(image)).toContain('BLOCK_OUT_OF_RANGE');
  });
});

describe('indirect blocks', () => {
  it('an indirect block out of range before a good double-indirect block', async () => {
    const image = await damaged('ext2', async (path) => {
      await debugfsWrite(path, 'sif <12> block[IND] 9999999');
    });
    expect(await expectSameAsE2image(image)).toContain('BAD_BLOCK_MAP');
  });
});

describe('group descriptors and overlapping metadata', () => {
  it.each([
    ['a block bitmap out of range', 'set_bg 1 block_bitmap 99999'],
    ['an inode bitmap on the superblock', 'set_bg 1 inode_bitmap 1'],
    ['an inode table over the bitmaps (overlapping metadata)', 'set_bg 0 inode_table 258'],
    ["group 0's inode table on group 1's (duplicate metadata)", 'set_bg 0 inode_table 282'],
    ['a bad descriptor checksum', 'set_bg 0 checksum 1'],
  ])('%s', async (_name, command) => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, command));
    expect(await expectSameAsE2image(image)).toContain('CHECKSUM');
  });

  it('two inodes sharing one xattr block', async () => {
    const image = await damaged('ext4', async (path) => {
      const acl = /File ACL: (\d+)/.exec(await debugfsRead(path, 'stat /d/f2'))?.[1];
      await debugfsWrite(path, `sif /d/f3 file_acl ${acl}`);
    });
    await expectSameAsE2image(image);
  });
});

describe('superblocks', () => {
  it('primary superblock destroyed: -b with a backup gives e2image -b’s bytes', async () => {
    const image = await damaged('ext4', async (path) => {
      await pokeBytes(path, 1024, Buffer.alloc(1024));
    });
    await expectSameAsE2image(image, { superblock: 1025, blockSize: 1024 });
  });
});

describe('bad-block lists', () => {
  it('an inode table block on the list: its inodes are skipped, as libext2fs’ scan does', async () => {
    const image = await damaged('ext4', async (path) => {
      const ino = await inodeNumber(path, '/sparse.bin');
      const table = /inode table at (\d+)/.exec(await debugfsRead(path, 'stats'))?.[1];
      // 256-byte inodes, 4 per 1 KiB block.
      const block = Number(table) + Math.floor((ino - 1) / 4);
      await debugfsWrite(path, `sif <1> block[0] ${block}`, 'sif <1> blocks 2');
    });
    expect(await expectSameAsE2image(image)).toContain('INODES_IN_BAD_BLOCKS');
  });

  it('a list whose indirect block names itself', async () => {
    const image = await damaged('ext2', async (path) => {
      const [ind] = await freeBlocks(path, 1, 2000);
      const entry = Buffer.alloc(4);
      entry.writeUInt32LE(ind as number);
      await pokeBytes(path, (ind as number) * 1024, entry);
      await debugfsWrite(path, `sif <1> block[IND] ${ind}`, 'sif <1> blocks 2');
    });
    await expectSameAsE2image(image);
  });
});

describe('inline data', () => {
  it('an inline directory whose inline flag is cleared (text read as block numbers)', async () => {
    const image = await damaged('inline', (path) => debugfsWrite(path, 'sif /dd flags 0'));
    expect(await expectSameAsE2image(image)).toContain('BLOCK_OUT_OF_RANGE');
  });

  it('an inline flag on an extent-mapped directory', async () => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, 'sif /d flags 0x10080000'));
    await expectSameAsE2image(image);
  });
});

describe('directory blocks, htree roots, xattr blocks', () => {
  it('a zeroed directory block', async () => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, 'zap_block -f /d 0'));
    await expectSameAsE2image(image);
  });

  it('an htree root with a broken dx_root info', async () => {
    const image = await damaged('ext4', async (path) => {
      const root = await physicalBlock(path, '/bigdir', 0);
      // dx_root_info follows "." and ".." (24 bytes): hash version, info length, levels.
      await pokeBytes(path, root * 1024 + 24 + 4, Buffer.from([0xee, 0x63, 0x09, 0xff]));
    });
    await expectSameAsE2image(image);
  });

  it('an htree directory whose leaf block points out of range', async () => {
    const image = await damaged('ext4', (path) =>
      debugfsWrite(path, 'sif /bigdir block[5] 9999999'),
    );
    expect(await expectSameAsE2image(image)).toContain('BLOCK_OUT_OF_RANGE');
  });

  it('an xattr block with a bad magic', async () => {
    const image = await damaged('ext4', async (path) => {
      const acl = Number(/File ACL: (\d+)/.exec(await debugfsRead(path, 'stat /d/f2'))?.[1]);
      await pokeBytes(path, acl * 1024, Buffer.from([0x55, 0x55, 0x55, 0x55]));
    });
    await expectSameAsE2image(image);
  });

  it('an xattr block number out of range', async () => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, 'sif /d/f1 file_acl 9999999'));
    expect(await expectSameAsE2image(image)).toContain('BLOCK_OUT_OF_RANGE');
  });
});

describe('orphan lists and journals', () => {
  it('an orphan list head that is not an inode', async () => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, 'ssv last_orphan 77777'));
    await expectSameAsE2image(image);
  });

  it('a journal superblock zeroed', async () => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, 'zap_block -f <8> 0'));
    await expectSameAsE2image(image);
  });

  it('a journal extent out of range', async () => {
    const image = await damaged('ext4', (path) => debugfsWrite(path, 'sif <8> block[5] 9999999'));
    expect(await expectSameAsE2image(image)).toContain('BLOCK_OUT_OF_RANGE');
  });

  it('s_journal_inum naming a regular file (copied whole, as e2image does)', async () => {
    const image = await damaged('ext4', async (path) => {
      const ino = await inodeNumber(path, '/sparse.bin');
      await debugfsWrite(path, `ssv journal_inum ${ino}`);
    });
    await expectSameAsE2image(image);
  });
});

it('the damaged copies are made from intact fixtures', async () => {
  for (const image of Object.values(images)) {
    expect((await stat(image)).size).toBe(4 << 20);
    await runPeerOk('e2fsck', ['-fn', image]);
  }
});
