import { copyFile, mkdir, open, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockIoError, FileDevice } from '@x/blockio';
import { cachedFixture, pokeBytes, runPeer, runPeerOk, sha256File } from '@x/test-utils';
import {
  type E2imageWarning,
  Filesystem,
  lookupPath,
  superblockStruct,
  writeRawImageFile,
} from '../../src/index.js';
import { PACKAGE_ROOT } from './fixtures.js';

/**
 * Small, fast filesystems to damage (4 MiB, 1 KiB blocks, one group): an ext4
 * with a two-level extent tree ("/sparse.bin", 20 extents under one leaf block),
 * directories and a slow symlink; an ext2 whose "/big.bin" has an indirect and a
 * double-indirect block.
 */
export interface SmallFixtures {
  ext4: string;
  ext2: string;
}

const MKFS_ENV = { ...process.env, LC_ALL: 'C', E2FSPROGS_FAKE_TIME: '1700000000' };

async function writeSmallTree(root: string): Promise<void> {
  await mkdir(join(root, 'd'), { recursive: true });
  await mkdir(join(root, 'e'));
  for (let i = 1; i <= 20; i++) await writeFile(join(root, 'd', `f${i}`), `file ${i}\n`);
  // One 1 KiB block every other block, written around holes: one extent each,
  // so the inode's root indexes a leaf block.
  const sparse = await open(join(root, 'sparse.bin'), 'w');
  try {
    for (let i = 0; i < 20; i++) await sparse.write(Buffer.alloc(1024, i + 1), 0, 1024, i * 2048);
  } finally {
    await sparse.close();
  }
  const big = Buffer.alloc(300 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
  await writeFile(join(root, 'big.bin'), big);
  await symlink('x'.repeat(100), join(root, 'slowlink'));
}

export async function buildSmallFixtures(): Promise<SmallFixtures> {
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    'bad-input-small',
    JSON.stringify({ version: 1 }),
    async (dir) => {
      const tree = join(dir, 'tree');
      await writeSmallTree(tree);
      for (const [name, type] of [
        ['ext4.img', 'ext4'],
        ['ext2.img', 'ext2'],
      ] as const) {
        await runPeerOk(
          'mke2fs',
          ['-q', '-F', '-t', type, '-b', '1024', '-N', '128', '-d', tree, join(dir, name), '4M'],
          { env: MKFS_ENV },
        );
        await runPeerOk('e2fsck', ['-fn', join(dir, name)]);
      }
    },
  );
  return { ext4: join(directory, 'ext4.img'), ext2: join(directory, 'ext2.img') };
}

/** Runs debugfs -w commands on an image, failing on any error debugfs prints. */
export async function debugfsWrite(image: string, ...commands: string[]): Promise<void> {
  for (const command of commands) {
    const result = await runPeerOk('debugfs', ['-w', '-R', command, image]);
    const complaint = result.stderr
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('debugfs '));
    if (complaint.length > 0) throw new Error(`debugfs ${command}: ${complaint.join('; ')}`);
  }
}

/** Writes little-endian u32 superblock fields of the primary superblock (no checksum update). */
export async function pokeSuperblock(
  image: string,
  fields: Partial<Record<string, number>>,
): Promise<void> {
  for (const [name, value] of Object.entries(fields)) {
    const field = superblockStruct.fields.find((f) => f.name === name);
    if (field?.type.size !== 4) throw new Error(`not a u32 superblock field: ${name}`);
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(value as number);
    await pokeBytes(image, 1024 + field.offset, bytes);
  }
}

export async function pokeU32(image: string, offset: number, ...values: number[]): Promise<void> {
  const bytes = Buffer.alloc(4 * values.length);
  for (const [i, value] of values.entries()) bytes.writeUInt32LE(value >>> 0, i * 4);
  await pokeBytes(image, offset, bytes);
}

export async function pokeU16(image: string, offset: number, value: number): Promise<void> {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value);
  await pokeBytes(image, offset, bytes);
}

/** Facts about the undamaged fixture, read with our reader, that the pokes aim at. */
export interface Layout {
  blockSize: number;
  /** Inode number and extent leaf block of /sparse.bin (ext4). */
  sparseIno: number;
  sparseLeaf: number;
  /** Inode and first block of directory /d (ext4). */
  dirIno: number;
  dirBlock: number;
  /** Block bitmap and inode table of group 0. */
  blockBitmap: number;
  inodeTable: number;
}

export async function readLayout(image: string): Promise<Layout> {
  const device = await FileDevice.open(image);
  try {
    const fs = await Filesystem.open(device);
    const sparse = await fs.readInode(await lookupPath(fs, '/sparse.bin'));
    const area = sparse.blockArea;
    if (area.readUInt16LE(6) !== 1) throw new Error('fixture: /sparse.bin should have depth 1');
    const dir = await fs.readInode(await lookupPath(fs, '/d'));
    const descriptor = fs.groupDescriptor(0);
    return {
      blockSize: fs.blockSize,
      sparseIno: sparse.ino,
      // First index entry: ei_leaf_lo at byte 12 + 4.
      sparseLeaf: area.readUInt32LE(16),
      dirIno: dir.ino,
      // Depth-0 root, first extent: ee_start_lo at byte 12 + 8.
      dirBlock: dir.blockArea.readUInt32LE(20),
      blockBitmap: descriptor.blockBitmap,
      inodeTable: descriptor.inodeTable,
    };
  } finally {
    await device.close();
  }
}

export interface SourceState {
  hash: string;
  mtimeMs: number;
  size: number;
}

export async function sourceState(path: string): Promise<SourceState> {
  const info = await stat(path);
  return { hash: await sha256File(path), mtimeMs: info.mtimeMs, size: info.size };
}

export interface PeerRun {
  code: number;
  /** stderr then stdout (e2image prints some complaints on stdout). */
  stderr: string;
}

/** e2fsprogs' e2image on the same input (its output file may be left behind on failure). */
export async function peerImage(args: string[]): Promise<PeerRun> {
  const result = await runPeer('e2image', args);
  return { code: result.code, stderr: `${result.stderr}${result.stdout}` };
}

export interface OurRun {
  error: BlockIoError | undefined;
  warnings: E2imageWarning[];
}

/** Our -r (library), collecting warnings; any error that is not a typed BlockIoError is rethrown. */
export async function ourRawImage(
  image: string,
  out: string,
  options: { allData?: boolean; scramble?: boolean } = {},
): Promise<OurRun> {
  const warnings: E2imageWarning[] = [];
  const device = await FileDevice.open(image);
  try {
    const fs = await Filesystem.open(device, { onWarning: (w) => warnings.push(w) });
    await writeRawImageFile(fs, out, options);
    return { error: undefined, warnings };
  } catch (error) {
    if (error instanceof BlockIoError) return { error, warnings };
    throw error;
  } finally {
    await device.close();
  }
}

export async function copyTo(source: string, target: string): Promise<string> {
  await copyFile(source, target);
  return target;
}
