import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedFixture, runPeer, runPeerOk } from '@x/test-utils';
import { type TreeSpec, writeTree } from './tree.js';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * One filesystem of the test matrix, built at test time by the real mke2fs -d
 * (and debugfs -w for what -d cannot do), plus e2fsprogs' own e2image outputs
 * of it for byte comparisons.
 */
export interface FixtureRecipe {
  name: string;
  /** mke2fs options before the image path. */
  mkfs: string[];
  size: string;
  tree: TreeSpec;
  /** Extra features the test should find in the superblock (documentation/assertion). */
  debugfs?: string[];
  /** Also make e2fsprogs' -ra output. */
  allData?: boolean;
}

export interface Fixture {
  recipe: FixtureRecipe;
  directory: string;
  /** The filesystem image. */
  image: string;
  /** The source tree mke2fs -d copied. */
  tree: string;
  /** e2image -r output. */
  peerRaw: string;
  /** e2image -rs output. */
  peerScrambled: string;
  /** e2image (normal) output. */
  peerNormal: string;
  /** e2image -ra output, when the recipe asks for it. */
  peerAllData: string | undefined;
}

const XATTR_VALUE = 'v'.repeat(700);

/** xattrs that need an external block (too big for the inode), via debugfs ea_set. */
function xattrCommands(valueFile: string): string[] {
  return [
    `ea_set -f ${valueFile} / user.big`,
    'ea_set / user.small tiny',
    `ea_set -f ${valueFile} /d0 user.big`,
  ];
}

/** A fragmented (non-sparse) file: delete every other small file of "frag/", then write a file into the holes. */
export const FRAGMENT_FILES = 300;

export const MATRIX: FixtureRecipe[] = [
  {
    name: 'ext2-1k',
    mkfs: ['-t', 'ext2', '-b', '1024', '-N', '30000'],
    size: '64M',
    tree: {
      files: 300,
      seed: 11,
      htreeEntries: 20000,
      farDataAt: 70 * 1024 * 1024,
      sparse: { segments: 400, stride: 3, blockSize: 1024 },
    },
    allData: true,
  },
  {
    name: 'ext3-4k',
    mkfs: ['-t', 'ext3', '-b', '4096', '-N', '30000'],
    size: '96M',
    tree: { files: 400, seed: 12, htreeEntries: 20000, farDataAt: 6 * 1024 * 1024 * 1024 },
  },
  {
    name: 'ext4-4k',
    mkfs: ['-t', 'ext4', '-b', '4096', '-N', '30000'],
    size: '96M',
    tree: {
      files: 500,
      seed: 13,
      htreeEntries: 20000,
      sparse: { segments: 1200, stride: 2, blockSize: 4096 },
    },
    allData: true,
  },
  {
    name: 'ext4-1k-deep',
    mkfs: ['-t', 'ext4', '-b', '1024'],
    size: '48M',
    tree: { files: 200, seed: 14, sparse: { segments: 1500, stride: 2, blockSize: 1024 } },
    debugfs: ['fragment'],
  },
  {
    name: 'ext4-meta_bg',
    mkfs: ['-t', 'ext4', '-b', '1024', '-g', '1024', '-O', 'meta_bg,^resize_inode'],
    size: '40M',
    tree: { files: 200, seed: 15 },
  },
  {
    name: 'ext4-bigalloc',
    mkfs: ['-t', 'ext4', '-b', '4096', '-O', 'bigalloc', '-C', '16384'],
    size: '128M',
    tree: { files: 300, seed: 16, sparse: { segments: 300, stride: 8, blockSize: 4096 } },
  },
  {
    name: 'ext4-bigalloc-1k',
    mkfs: ['-t', 'ext4', '-b', '1024', '-O', 'bigalloc', '-C', '4096'],
    size: '32M',
    tree: { files: 150, seed: 17 },
  },
  {
    name: 'ext4-inline_data',
    mkfs: ['-t', 'ext4', '-b', '4096', '-O', 'inline_data'],
    size: '32M',
    tree: { files: 200, seed: 18, inline: true },
  },
  {
    name: 'ext4-no-resize_inode',
    mkfs: ['-t', 'ext4', '-b', '4096', '-O', '^resize_inode'],
    size: '64M',
    tree: { files: 200, seed: 19 },
  },
  {
    name: 'ext4-sparse_super2',
    mkfs: ['-t', 'ext4', '-b', '1024', '-O', 'sparse_super2'],
    size: '48M',
    tree: { files: 200, seed: 20 },
  },
  {
    name: 'ext4-quota-orphan_file',
    mkfs: ['-t', 'ext4', '-b', '4096', '-O', 'quota,orphan_file,project'],
    size: '64M',
    tree: { files: 200, seed: 21 },
  },
  {
    name: 'ext4-uninit_bg-32bit',
    mkfs: ['-t', 'ext4', '-b', '1024', '-O', '^metadata_csum,^64bit,uninit_bg'],
    size: '48M',
    tree: { files: 200, seed: 22 },
  },
];

function recipeKey(recipe: FixtureRecipe): string {
  // Bump the version when the build steps below change.
  return JSON.stringify({ version: 4, recipe });
}

export async function buildFixture(recipe: FixtureRecipe): Promise<Fixture> {
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    recipe.name,
    recipeKey(recipe),
    async (dir) => {
      const tree = join(dir, 'tree');
      await writeTree(tree, recipe.tree);
      const image = join(dir, 'fs.img');
      const fragment = recipe.debugfs?.includes('fragment') ?? false;
      if (fragment) {
        const frag = join(tree, 'frag');
        const { mkdir } = await import('node:fs/promises');
        await mkdir(frag);
        for (let i = 0; i < FRAGMENT_FILES; i++) {
          await writeFile(
            join(frag, `s${String(i).padStart(4, '0')}`),
            Buffer.alloc(1024, i & 0xff),
          );
        }
      }
      await runPeerOk(
        'mke2fs',
        ['-q', '-F', '-E', 'root_owner=0:0', ...recipe.mkfs, '-d', tree, image, recipe.size],
        {
          env: {
            ...process.env,
            LC_ALL: 'C',
            E2FSPROGS_FAKE_TIME: '1700000000',
            MKE2FS_DEVICE_SECTSIZE: '512',
          },
        },
      );
      const valueFile = join(dir, 'xattr-value');
      await writeFile(valueFile, XATTR_VALUE);
      const commands = [...xattrCommands(valueFile)];
      if (fragment) {
        for (let i = 0; i < FRAGMENT_FILES; i += 2)
          commands.push(`rm /frag/s${String(i).padStart(4, '0')}`);
        const fragmented = join(dir, 'fragmented.bin');
        const { seededBytes } = await import('@x/test-utils');
        await writeFile(fragmented, seededBytes((FRAGMENT_FILES / 2) * 1024, 99));
        commands.push(`write ${fragmented} /frag/fragmented.bin`);
      }
      const script = join(dir, 'debugfs.cmd');
      await writeFile(script, `${commands.join('\n')}\n`);
      await runPeerOk('debugfs', ['-w', '-f', script, image]);
      // mke2fs -d links entries one by one (no htree) and leaves quota usage stale;
      // e2fsck -D indexes the big directories the way the kernel would have.
      const optimise = await runPeer('e2fsck', ['-fyD', image]);
      if (optimise.code > 1)
        throw new Error(`e2fsck -fyD exited ${optimise.code}: ${optimise.stdout}`);
      await runPeerOk('e2fsck', ['-fn', image]);
      await runPeerOk('e2image', ['-r', image, join(dir, 'peer.raw')]);
      await runPeerOk('e2image', ['-rs', image, join(dir, 'peer-s.raw')]);
      await runPeerOk('e2image', [image, join(dir, 'peer.e2i')]);
      if (recipe.allData) await runPeerOk('e2image', ['-ra', image, join(dir, 'peer-a.raw')]);
    },
  );
  return {
    recipe,
    directory,
    image: join(directory, 'fs.img'),
    tree: join(directory, 'tree'),
    peerRaw: join(directory, 'peer.raw'),
    peerScrambled: join(directory, 'peer-s.raw'),
    peerNormal: join(directory, 'peer.e2i'),
    peerAllData: recipe.allData ? join(directory, 'peer-a.raw') : undefined,
  };
}
