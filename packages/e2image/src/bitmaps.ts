import { verifyBitmapChecksum } from './checksum.js';
import type { Filesystem } from './filesystem.js';
import {
  EXT2_BG_BLOCK_UNINIT,
  EXT2_BG_INODE_UNINIT,
  EXT2_FEATURE_INCOMPAT_META_BG,
} from './format/constants.js';
import {
  EXT4_BG_BLOCK_BITMAP_CSUM_HI_END,
  EXT4_BG_INODE_BITMAP_CSUM_HI_END,
} from './format/group-descriptor.js';
import { superAndDescriptorLocation } from './geometry.js';

/**
 * The filesystem's block (cluster) and inode bitmaps as libext2fs holds them in
 * memory after ext2fs_read_bitmaps: each group's on-disk bitmap, except that
 * lazily-initialised groups read as empty, and BLOCK_UNINIT groups get their
 * own superblock/descriptor/table blocks marked (mark_uninit_bg_group_blocks).
 * Bit i of the block bitmap is cluster B2C(s_first_data_block) + i.
 */
export interface Bitmaps {
  /** groups × clusters_per_group / 8 bytes. */
  readonly block: Buffer;
  /** groups × inodes_per_group / 8 bytes. */
  readonly inode: Buffer;
}

/** Bytes of each group's part of the bitmaps (the whole bitmaps are groupCount times these). */
export function bitmapBytesPerGroup(fs: Filesystem): { block: number; inode: number } {
  return { block: fs.clustersPerGroup / 8, inode: fs.inodesPerGroup / 8 };
}

export async function readBitmaps(fs: Filesystem): Promise<Bitmaps> {
  const { block: blockBytes, inode: inodeBytes } = bitmapBytesPerGroup(fs);
  const block = Buffer.alloc(blockBytes * fs.groupCount);
  const inode = Buffer.alloc(inodeBytes * fs.groupCount);
  const csum = fs.groupDescriptorChecksums;
  const scratch = Buffer.allocUnsafe(fs.blockSize);
  for (let group = 0; group < fs.groupCount; group++) {
    const descriptor = fs.groupDescriptor(group);
    let location = descriptor.blockBitmap;
    if (
      (csum && descriptor.flags & EXT2_BG_BLOCK_UNINIT && fs.descriptorChecksumOk(group)) ||
      location >= fs.blocksCount
    ) {
      location = 0;
    }
    if (location !== 0) {
      await fs.readBlocks(location, 1, `block bitmap of group ${group}`, scratch);
      scratch.copy(block, group * blockBytes, 0, blockBytes);
      if (fs.metadataChecksums) {
        const result = verifyBitmapChecksum(
          fs.checksumSeed,
          scratch,
          blockBytes,
          descriptor.blockBitmapChecksum,
          fs.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END,
        );
        fs.checksums.record('block bitmap', result.ok, {
          group,
          block: location,
          stored: result.stored,
          computed: result.computed,
        });
      }
    }
    location = descriptor.inodeBitmap;
    if (
      (csum && descriptor.flags & EXT2_BG_INODE_UNINIT && fs.descriptorChecksumOk(group)) ||
      location >= fs.blocksCount
    ) {
      location = 0;
    }
    if (location !== 0) {
      await fs.readBlocks(location, 1, `inode bitmap of group ${group}`, scratch);
      scratch.copy(inode, group * inodeBytes, 0, inodeBytes);
      if (fs.metadataChecksums) {
        const result = verifyBitmapChecksum(
          fs.checksumSeed,
          scratch,
          inodeBytes,
          descriptor.inodeBitmapChecksum,
          fs.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END,
        );
        fs.checksums.record('inode bitmap', result.ok, {
          group,
          block: location,
          stored: result.stored,
          computed: result.computed,
        });
      }
    }
  }
  markUninitGroupBlocks(fs, block);
  return { block, inode };
}

/** A cluster bitmap with libext2fs' range checks: marks outside [start, end] are ignored. */
class ClusterBitmap {
  readonly #bits: Buffer;
  readonly #shift: number;
  readonly #start: number;
  readonly #end: number;

  constructor(fs: Filesystem, bits: Buffer) {
    this.#bits = bits;
    this.#shift = fs.clusterBits;
    this.#start = fs.blockToCluster(fs.firstDataBlock);
    this.#end = fs.blockToCluster(fs.blocksCount - 1);
  }

  mark(block: number): void {
    const cluster = Math.floor(block / 2 ** this.#shift);
    if (cluster < this.#start || cluster > this.#end) return;
    this.#set(cluster - this.#start);
  }

  markRange(block: number, count: number): void {
    const first = Math.floor(block / 2 ** this.#shift);
    const last = Math.floor((block + count + 2 ** this.#shift - 1) / 2 ** this.#shift);
    const clusters = last - first;
    if (first < this.#start || first > this.#end || first + clusters - 1 > this.#end) return;
    for (let c = first; c < last; c++) this.#set(c - this.#start);
  }

  #set(bit: number): void {
    const index = bit >>> 3;
    this.#bits[index] = (this.#bits[index] as number) | (1 << (bit & 7));
  }
}

/** mark_uninit_bg_group_blocks + ext2fs_reserve_super_and_bgd, for BLOCK_UNINIT groups. */
function markUninitGroupBlocks(fs: Filesystem, bits: Buffer): void {
  const bitmap = new ClusterBitmap(fs, bits);
  const oldDescBlocks = fs.hasFeatureIncompat(EXT2_FEATURE_INCOMPAT_META_BG)
    ? fs.firstMetaBg
    : fs.descBlocks + fs.reservedGdtBlocks;
  for (let group = 0; group < fs.groupCount; group++) {
    const descriptor = fs.groupDescriptor(group);
    if (!(descriptor.flags & EXT2_BG_BLOCK_UNINIT)) continue;
    const location = superAndDescriptorLocation(fs, group);
    if (location.superBlock || group === 0) bitmap.mark(location.superBlock);
    if (group === 0 && fs.blockSize === 1024 && fs.clusterRatio > 1) bitmap.mark(0);
    if (location.oldDescBlock) {
      let count = oldDescBlocks;
      if (location.oldDescBlock + count >= fs.blocksCount)
        count = fs.blocksCount - location.oldDescBlock;
      bitmap.markRange(location.oldDescBlock, count);
    }
    if (location.newDescBlock) bitmap.mark(location.newDescBlock);
    if (descriptor.inodeTable) bitmap.markRange(descriptor.inodeTable, fs.inodeBlocksPerGroup);
    if (descriptor.blockBitmap) bitmap.mark(descriptor.blockBitmap);
    if (descriptor.inodeBitmap) bitmap.mark(descriptor.inodeBitmap);
  }
}

/**
 * Warns (BITMAP_MISMATCH, once per group) where the block bitmap calls a group's
 * own bitmap or inode table blocks free, or the inode bitmap calls a reserved
 * inode free. e2image copies bitmaps as they are and says nothing; a mismatch is
 * still worth knowing about before trusting the image.
 */
export function reportBitmapMismatches(fs: Filesystem, bitmaps: Bitmaps): void {
  const firstCluster = fs.blockToCluster(fs.firstDataBlock);
  const isFree = (block: number) => {
    if (block < fs.firstDataBlock || block >= fs.blocksCount) return false;
    const bit = fs.blockToCluster(block) - firstCluster;
    return ((bitmaps.block[bit >>> 3] as number) & (1 << (bit & 7))) === 0;
  };
  for (let group = 0; group < fs.groupCount; group++) {
    const descriptor = fs.groupDescriptor(group);
    const tables: Array<[string, number, number]> = [
      ['block bitmap', descriptor.blockBitmap, 1],
      ['inode bitmap', descriptor.inodeBitmap, 1],
      ['inode table', descriptor.inodeTable, fs.inodeBlocksPerGroup],
    ];
    search: for (const [what, start, count] of tables) {
      if (start === 0) continue;
      for (let block = start; block < start + count; block++) {
        if (!isFree(block)) continue;
        fs.warn({
          code: 'BITMAP_MISMATCH',
          message: `group ${group}: the block bitmap says block ${block} is free, but it holds the ${what} of group ${group}`,
          group,
          block,
        });
        break search;
      }
    }
  }
  const firstIno = fs.superblock.s_rev_level === 0 ? 11 : fs.superblock.s_first_ino;
  for (let ino = 1; ino < Math.min(firstIno, fs.inodesPerGroup + 1); ino++) {
    const bit = ino - 1;
    if (((bitmaps.inode[bit >>> 3] as number) & (1 << (bit & 7))) !== 0) continue;
    fs.warn({
      code: 'BITMAP_MISMATCH',
      message: `group 0: the inode bitmap says reserved inode ${ino} is free`,
      group: 0,
      inode: ino,
    });
    break;
  }
}
