import { lstat, readdir, readFile as readHostFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice } from '@x/blockio';
import { describe, expect, it } from 'vitest';
import {
  constants,
  crc32c,
  Filesystem,
  fileExtents,
  Inode,
  iterateInodes,
  listDirectory,
  lookupPath,
  readFile,
  readSymlink,
  readXattrs,
  walkInodeBlocks,
} from '../src/index.js';
import { buildFixture, type Fixture, MATRIX } from './support/fixtures.js';

async function open(fixture: Fixture): Promise<{ fs: Filesystem; close: () => Promise<void> }> {
  const device = await FileDevice.open(fixture.image);
  const fs = await Filesystem.open(device);
  return { fs, close: () => device.close() };
}

/** Walks the host tree and the filesystem side by side: names, types, sizes, contents, link targets. */
async function compareTree(
  fs: Filesystem,
  hostDir: string,
  ino: number,
  path: string,
): Promise<number> {
  const entries = (await listDirectory(fs, ino)).filter(
    (e) => e.name !== '.' && e.name !== '..' && e.name !== 'lost+found' && e.name !== 'frag',
  );
  const hostNames = (await readdir(hostDir)).filter((name) => name !== 'frag').sort();
  expect(entries.map((e) => e.name).sort(), path).toEqual(hostNames);
  let compared = 0;
  for (const entry of entries) {
    const hostPath = join(hostDir, entry.name);
    const stat = await lstat(hostPath);
    const inode = await fs.readInode(entry.inode);
    if (stat.isDirectory()) {
      expect(inode.isDirectory).toBe(true);
      compared += await compareTree(fs, hostPath, entry.inode, `${path}/${entry.name}`);
    } else if (stat.isSymbolicLink()) {
      expect(await readSymlink(fs, inode)).toBe(await readlink(hostPath));
      compared++;
    } else if (stat.size < 8 << 20) {
      expect(inode.size).toBe(stat.size);
      const ours = await readFile(fs, inode);
      expect(ours.equals(await readHostFile(hostPath)), `${path}/${entry.name}`).toBe(true);
      compared++;
    }
  }
  return compared;
}

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});

describe.each(MATRIX.map((recipe) => [recipe.name, recipe] as const))(
  'reader on %s',
  (_name, recipe) => {
    it('lists every directory and reads every file, link and inline file like the source tree', async () => {
      const fixture = await buildFixture(recipe);
      const { fs, close } = await open(fixture);
      try {
        const compared = await compareTree(fs, fixture.tree, constants.EXT2_ROOT_INO, '');
        expect(compared).toBeGreaterThan(recipe.tree.files);
        // Checksums written by mke2fs/debugfs/e2fsck all verify.
        expect(fs.checksums.failed).toBe(0);
        if (fs.metadataChecksums) expect(fs.checksums.checked.inode).toBeGreaterThan(0);
      } finally {
        await close();
      }
    });

    it('iterates in-use inodes and reads xattrs stored in blocks', async () => {
      const fixture = await buildFixture(recipe);
      const { fs, close } = await open(fixture);
      try {
        let count = 0;
        const types = new Set<string>();
        for await (const inode of iterateInodes(fs)) {
          expect(inode).toBeInstanceOf(Inode);
          types.add(inode.fileType);
          count++;
        }
        // Every in-use inode has a type; the tree holds files, directories and links.
        expect(types.has('unknown')).toBe(false);
        for (const type of ['regular', 'directory', 'symlink']) expect(types.has(type)).toBe(true);
        // The bitmap also counts reserved inodes nobody links to.
        let unlinkedReserved = 0;
        for (let ino = 1; ino < fs.superblock.s_first_ino; ino++) {
          if ((await fs.readInode(ino)).linksCount === 0) unlinkedReserved++;
        }
        expect(count).toBe(
          fs.superblock.s_inodes_count - fs.superblock.s_free_inodes_count - unlinkedReserved,
        );
        const root = await fs.readInode(constants.EXT2_ROOT_INO);
        expect(root.fileAcl).toBeGreaterThan(0);
        const xattrs = await readXattrs(fs, root);
        expect(xattrs.find((x) => x.name === 'user.big')?.value.toString()).toBe('v'.repeat(700));
        expect(fs.checksums.failed).toBe(0);
      } finally {
        await close();
      }
    });
  },
);

describe('the matrix exercises what it claims', () => {
  it('has htree directories, deep extent trees, triple-indirect blocks, fragmented files and inline data', async () => {
    const depthOf = async (fs: Filesystem, path: string) => {
      const inode = await fs.readInode(await lookupPath(fs, path));
      return inode.blockArea.readUInt16LE(6);
    };
    const check = async (name: string, body: (fs: Filesystem) => Promise<void>) => {
      const recipe = MATRIX.find((r) => r.name === name);
      if (!recipe) throw new Error(name);
      const { fs, close } = await open(await buildFixture(recipe));
      try {
        await body(fs);
      } finally {
        await close();
      }
    };
    for (const name of ['ext2-1k', 'ext3-4k', 'ext4-4k']) {
      await check(name, async (fs) => {
        const bigdir = await fs.readInode(await lookupPath(fs, '/bigdir'));
        expect(bigdir.flags & constants.EXT2_INDEX_FL).toBeTruthy();
        expect((await listDirectory(fs, bigdir)).length).toBe(20002);
      });
    }
    await check('ext2-1k', async (fs) => {
      const far = await fs.readInode(await lookupPath(fs, '/far.bin'));
      expect(far.usesExtents).toBe(false);
      expect(far.blockPointer(constants.EXT2_TIND_BLOCK)).toBeGreaterThan(0);
      const kinds = new Set<string>();
      await walkInodeBlocks(fs, far, { mapping: (_b, kind) => kinds.add(kind) }, { data: false });
      expect([...kinds].sort()).toEqual(['double-indirect', 'indirect', 'triple-indirect']);
    });
    await check('ext4-1k-deep', async (fs) => {
      expect(await depthOf(fs, '/sparse.bin')).toBe(2);
      expect(await depthOf(fs, '/frag/fragmented.bin')).toBeGreaterThanOrEqual(1);
      const runs = await fileExtents(fs, await lookupPath(fs, '/frag/fragmented.bin'));
      expect(runs.length).toBeGreaterThan(4);
    });
    await check('ext4-4k', async (fs) => {
      expect(await depthOf(fs, '/sparse.bin')).toBe(1);
    });
    await check('ext4-inline_data', async (fs) => {
      const inline = await fs.readInode(await lookupPath(fs, '/inline/i3'));
      expect(inline.hasInlineData).toBe(true);
    });
    await check('ext4-quota-orphan_file', async (fs) => {
      expect(fs.superblock.s_orphan_file_inum).toBeGreaterThan(0);
      expect(fs.superblock.s_prj_quota_inum).toBeGreaterThan(0);
    });
    await check('ext4-meta_bg', async (fs) => {
      expect(fs.hasFeatureIncompat(constants.EXT2_FEATURE_INCOMPAT_META_BG)).toBe(true);
      expect(fs.descBlocks).toBeGreaterThan(1);
    });
    await check('ext4-bigalloc', async (fs) => {
      expect(fs.clusterRatio).toBe(4);
    });
  });
});
