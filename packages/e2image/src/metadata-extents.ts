import {
  ExtentSet,
  forEachConcurrent,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
  toSafeNumber,
} from '@x/blockio';
import { readBadBlockList } from './bad-blocks.js';
import { type BlockVisitor, walkInodeBlocks, walkInodeBlocksSync } from './block-walk.js';
import type { Filesystem } from './filesystem.js';
import {
  EXT2_BG_BLOCK_UNINIT,
  EXT2_BG_INODE_UNINIT,
  EXT2_OS_HURD,
  EXT3_EXT_MAGIC,
  EXT4_EXTENTS_FL,
  EXT4_FEATURE_INCOMPAT_MMP,
  EXT4_GRP_QUOTA_INO,
  EXT4_INLINE_DATA_FL,
  EXT4_USR_QUOTA_INO,
  LINUX_S_IFDIR,
  LINUX_S_IFLNK,
  LINUX_S_IFMT,
  LINUX_S_IFREG,
} from './format/constants.js';
import {
  I_BLOCK,
  I_FILE_ACL_HIGH,
  I_FILE_ACL_LO,
  I_FLAGS,
  I_LINKS_COUNT,
  I_MODE,
} from './format/inode.js';
import { descriptorBlockLocation } from './geometry.js';
import type { Inode } from './inode.js';
import { scanInodeTables } from './inode-scan.js';

export interface CollectMetadataOptions extends LongRunningOptions {
  /** e2image -a: include the contents of regular files too. */
  allData?: boolean | undefined;
  /**
   * The output is a block device (e2image's output_is_blk): whole inode tables are
   * copied, including never-initialised ones, since stale data there would be read.
   */
  outputIsBlockDevice?: boolean | undefined;
  /** Verify every scanned inode's checksum (slower; reported in fs.checksums). Default false. */
  verifyChecksums?: boolean | undefined;
  /** Inodes whose block maps are walked at once when that needs reads. Default 8. */
  concurrency?: number | undefined;
  /**
   * Called with each run of inode table blocks of the set as the scan reads it, so
   * that a copy of the metadata can write them out there and then instead of
   * reading them a second time. `bytes` (whole blocks) are valid only until the
   * returned promise settles.
   */
  onInodeTableBlocks?: ((block: number, bytes: Buffer) => Promise<void>) | undefined;
}

export interface MetadataSet {
  /** Byte ranges of the device that e2image copies (whole clusters under bigalloc). */
  readonly extents: ExtentSet;
  /** Byte ranges of directory contents (what -s scrambles). */
  readonly directoryExtents: ExtentSet;
  /** Blocks of the filesystem the set covers. */
  readonly blockCount: number;
  /** Block numbers e2image's bitmap would have ignored (outside the filesystem). */
  readonly outOfRangeBlocks: number;
}

/**
 * Exactly the set of blocks e2fsprogs' e2image copies for -r/-Q (see
 * write_raw_image_file and mark_table_blocks in misc/e2image.c), as an ExtentSet
 * of byte ranges.
 */
export async function collectMetadataExtents(
  fs: Filesystem,
  options: CollectMetadataOptions = {},
): Promise<ExtentSet> {
  return (await collectMetadata(fs, options)).extents;
}

/** collectMetadataExtents plus the directory blocks (for -s) and counts. */
export async function collectMetadata(
  fs: Filesystem,
  options: CollectMetadataOptions = {},
): Promise<MetadataSet> {
  const blocks = new ExtentSet();
  const directories = new ExtentSet();
  markTableBlocks(fs, blocks, options.outputIsBlockDevice ?? false);
  // Only blocks the set holds are handed to onInodeTableBlocks; the scan reads no
  // others, but the set, not the scan, is what says what to copy.
  const tables = options.onInodeTableBlocks ? blocks.clone() : undefined;
  await markInodeBlocks(fs, blocks, directories, options, tables);
  const extents = toByteExtents(fs, blocks, true);
  return {
    extents: extents.set,
    directoryExtents: toByteExtents(fs, directories, false).set,
    blockCount: extents.set.totalBytes / fs.blockSize,
    outOfRangeBlocks: extents.outOfRange,
  };
}

/** mark_table_blocks: superblock, descriptors, MMP, and per group the inode table and bitmaps. */
function markTableBlocks(fs: Filesystem, blocks: ExtentSet, outputIsBlockDevice: boolean): void {
  const primary = fs.firstDataBlock;
  // A damaged _hi half of a 64-bit descriptor gives a block number past 2^53: it
  // lies past s_blocks_count (checked on open), so it is kept as an out-of-range
  // block that toByteExtents ignores with a warning, as e2image ignores it.
  const markGroupBlocks = (block: number, count: number) =>
    blocks.add(Number.isSafeInteger(block + count) ? block : fs.blocksCount, count);
  const markSuperAndDescriptors = (superblock: number) => {
    blocks.add(superblock, 1);
    for (let index = 0; index < fs.descBlocks; index++) {
      blocks.add(descriptorBlockLocation(fs, superblock, index), 1);
    }
  };
  // -b: the backup superblock and its descriptors come first, then the primary copies.
  if (fs.superblockLocation !== 0) markSuperAndDescriptors(fs.superblockLocation);
  markSuperAndDescriptors(primary);
  if (fs.hasFeatureIncompat(EXT4_FEATURE_INCOMPAT_MMP)) {
    blocks.add(
      toSafeNumber(fs.superblock.s_mmp_block, 's_mmp_block', {
        path: fs.device.name,
        structure: 'superblock s_mmp_block',
      }),
      1,
    );
  }
  const csum = fs.groupDescriptorChecksums;
  for (let group = 0; group < fs.groupCount; group++) {
    const descriptor = fs.groupDescriptor(group);
    if (
      (outputIsBlockDevice || !(descriptor.flags & EXT2_BG_INODE_UNINIT)) &&
      descriptor.inodeTable
    ) {
      let tableBlocks = fs.inodeBlocksPerGroup;
      if (!outputIsBlockDevice && csum) {
        tableBlocks -= Math.floor(descriptor.itableUnused / fs.inodesPerBlock);
      }
      if (tableBlocks < 0) {
        fs.warn({
          code: 'BLOCK_OUT_OF_RANGE',
          message: `group ${group}: bg_itable_unused ${descriptor.itableUnused} exceeds the ${fs.inodesPerGroup} inodes of a group`,
          group,
        });
        tableBlocks = 0;
      }
      markGroupBlocks(descriptor.inodeTable, tableBlocks);
    }
    if (!(descriptor.flags & EXT2_BG_BLOCK_UNINIT) && descriptor.blockBitmap) {
      markGroupBlocks(descriptor.blockBitmap, 1);
    }
    if (!(descriptor.flags & EXT2_BG_INODE_UNINIT) && descriptor.inodeBitmap) {
      markGroupBlocks(descriptor.inodeBitmap, 1);
    }
  }
}

/**
 * The inode scan of write_raw_image_file: for every inode with links, its xattr
 * block; then all blocks of directories, symlinks, the journal, quota and
 * orphan-file inodes; and only the mapping blocks (or, with -a, all blocks) of
 * everything else.
 */
async function markInodeBlocks(
  fs: Filesystem,
  blocks: ExtentSet,
  directories: ExtentSet,
  options: CollectMetadataOptions,
  tables: ExtentSet | undefined,
): Promise<void> {
  const allData = options.allData ?? false;
  const verify = options.verifyChecksums ?? false;
  const sb = fs.superblock;
  const wholeInodes = new Set(
    [
      sb.s_journal_inum,
      EXT4_USR_QUOTA_INO,
      EXT4_GRP_QUOTA_INO,
      sb.s_prj_quota_inum,
      sb.s_orphan_file_inum,
    ].filter((ino) => ino !== 0),
  );
  const mapping = (block: number) => {
    blocks.add(block, 1);
  };
  const everything: BlockVisitor = {
    mapping,
    data: (_logical, physical, count) => {
      blocks.add(physical, count);
    },
  };
  const directory: BlockVisitor = {
    mapping,
    data: (_logical, physical, count) => {
      blocks.add(physical, count);
      directories.add(physical, count);
    },
  };
  const mappingOnly: BlockVisitor = { mapping };
  // Counts inodes, not bytes: a progress bar must show counts, not "8.00 KiB".
  const progress = new ProgressTracker('scan inodes', fs.inodesCount, options.onProgress, {
    unit: 'items',
  });
  const concurrency = options.concurrency ?? 8;

  // Regular files whose block map holds nothing e2image copies are most inodes:
  // they are decided from the table bytes, without an Inode object per inode.
  const quickFiles = !allData && fs.superblock.s_creator_os !== EXT2_OS_HURD;
  const is64bit = fs.is64bit;

  // Inodes in inode table blocks on the bad-block list are skipped by
  // libext2fs' scan (EXT2_ET_BAD_BLOCK_IN_INODE_TABLE, which e2image steps
  // over): none of their blocks are copied, though the table blocks are.
  const badBlocks = await readBadBlockList(fs, options.signal);
  const inodesPerBlock = fs.inodesPerBlock;
  let skippedInBadBlocks = 0;

  // The chunks' buffers are reused: every inode of a chunk is done with (the
  // pending walks included) before the next chunk is asked for.
  const scan = scanInodeTables(fs, { signal: options.signal, reuseBuffers: true });
  for await (const chunk of scan) {
    const pending: Array<{ inode: Inode; visitor: BlockVisitor; data: boolean }> = [];
    const size = fs.inodeSize;
    const table = chunk.bytes;
    for (let i = 0; i < chunk.count; i++) {
      const at = i * size;
      if ((table[at + I_LINKS_COUNT] as number) === 0 && table[at + I_LINKS_COUNT + 1] === 0) {
        continue;
      }
      if (!badBlocks.isEmpty && badBlocks.has(chunk.tableBlock + Math.floor(i / inodesPerBlock))) {
        skippedInBadBlocks++;
        continue;
      }
      const ino = chunk.firstIno + i;
      if (verify) fs.verifyInode(ino, table.subarray(at, at + size));
      if (quickFiles && !wholeInodes.has(ino) && plainRegularFile(table, at)) {
        const acl = fileAclBlock(table, at, is64bit);
        if (acl !== 0) blocks.add(acl, 1);
        continue;
      }
      const bytes = table.subarray(at, at + size);
      const inode = fs.inodeFromBytes(ino, bytes);
      const acl = inode.fileAcl;
      if (acl !== 0) blocks.add(acl, 1);
      if (!inode.hasValidBlocks) continue;
      const type = bytes.readUInt16LE(I_MODE) & LINUX_S_IFMT;
      let visitor: BlockVisitor;
      let data: boolean;
      if (type === LINUX_S_IFDIR) {
        visitor = directory;
        data = true;
      } else if (type === LINUX_S_IFLNK || wholeInodes.has(ino)) {
        visitor = everything;
        data = true;
      } else if (inode.usesExtents || inode.hasIndirectBlocks || allData) {
        visitor = allData ? everything : mappingOnly;
        data = allData;
      } else {
        continue;
      }
      if (!walkInodeBlocksSync(fs, inode, visitor, { data }))
        pending.push({ inode, visitor, data });
    }
    if (pending.length > 0) {
      await forEachConcurrent(
        pending,
        concurrency,
        ({ inode, visitor, data }) =>
          walkInodeBlocks(fs, inode, visitor, { data, signal: options.signal }),
        { signal: options.signal, path: fs.device.name },
      );
    }
    const onTable = options.onInodeTableBlocks;
    if (onTable && tables) {
      const count = chunk.tableBytes.length / fs.blockSize;
      if (tables.covers(chunk.tableBlock, count)) await onTable(chunk.tableBlock, chunk.tableBytes);
    }
    progress.set(chunk.firstIno + chunk.count - 1);
  }
  throwIfAborted(options.signal, fs.device.name);
  if (skippedInBadBlocks > 0) {
    fs.warn({
      code: 'INODES_IN_BAD_BLOCKS',
      message: `${skippedInBadBlocks} in-use inode(s) lie in inode table blocks on the bad-block list; their blocks are left out, as e2image does`,
    });
  }
  progress.finish();
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
}

function u32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0
  );
}

/** Inode.fileAcl on table bytes. */
function fileAclBlock(table: Uint8Array, at: number, is64bit: boolean): number {
  const lo = u32(table, at + I_FILE_ACL_LO);
  return is64bit ? lo + u16(table, at + I_FILE_ACL_HIGH) * 2 ** 32 : lo;
}

/**
 * A regular file whose walk would mark nothing but its xattr block: an extent
 * tree that is a valid leaf inside the inode (or empty), or a block map without
 * indirect blocks. Anything else, including a root the walk would reject, takes
 * the full path (which reports it the same way as before).
 */
function plainRegularFile(table: Uint8Array, at: number): boolean {
  if ((u16(table, at + I_MODE) & LINUX_S_IFMT) !== LINUX_S_IFREG) return false;
  const flags = u32(table, at + I_FLAGS);
  if (flags & EXT4_INLINE_DATA_FL) return false;
  const root = at + I_BLOCK;
  if (flags & EXT4_EXTENTS_FL) {
    const magic = u16(table, root);
    if (magic !== EXT3_EXT_MAGIC) return false;
    const entries = u16(table, root + 2);
    const max = u16(table, root + 4);
    const depth = u16(table, root + 6);
    // The walk's own checks for a 60-byte root: eh_max 2..4, entries <= max.
    return depth === 0 && entries <= max && max >= 2 && max <= 4;
  }
  // i_block[12..14]: indirect, double- and triple-indirect pointers.
  for (let pointer = root + 48; pointer < root + 60; pointer++) {
    if (table[pointer] !== 0) return false;
  }
  return true;
}

/**
 * Block ranges to byte ranges the way e2image's block bitmap sees them: whole
 * clusters (bigalloc), and nothing outside [s_first_data_block, s_blocks_count).
 */
function toByteExtents(
  fs: Filesystem,
  blocks: ExtentSet,
  warn: boolean,
): { set: ExtentSet; outOfRange: number } {
  const result = new ExtentSet();
  const ratio = fs.clusterRatio;
  const firstCluster = fs.blockToCluster(fs.firstDataBlock);
  const lastCluster = fs.blockToCluster(fs.blocksCount - 1);
  let outOfRange = 0;
  for (const { offset: start, length } of blocks) {
    const end = start + length;
    if (start < fs.firstDataBlock) outOfRange += Math.min(end, fs.firstDataBlock) - start;
    if (end > fs.blocksCount) outOfRange += end - Math.max(start, fs.blocksCount);
    const firstC = Math.max(firstCluster, Math.floor(start / ratio));
    const lastC = Math.min(lastCluster, Math.floor((end - 1) / ratio));
    if (lastC < firstC) continue;
    const from = Math.max(fs.firstDataBlock, firstC * ratio);
    const to = Math.min(fs.blocksCount, (lastC + 1) * ratio);
    if (to > from) result.add(from * fs.blockSize, (to - from) * fs.blockSize);
  }
  if (warn && outOfRange > 0) {
    fs.warn({
      code: 'BLOCK_OUT_OF_RANGE',
      message: `${outOfRange} block number(s) in the metadata lie outside the filesystem and were ignored, as e2image does`,
    });
  }
  return { set: result, outOfRange };
}
