import {
  EXT2_FEATURE_INCOMPAT_META_BG,
  EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER,
  EXT4_FEATURE_COMPAT_SPARSE_SUPER2,
  EXT4_FEATURE_RO_COMPAT_GDT_CSUM,
  EXT4_FEATURE_RO_COMPAT_METADATA_CSUM,
} from './format/constants.js';

/**
 * Where things are in an ext filesystem, derived from the superblock only.
 * The functions mirror libext2fs' (ext2fs_bg_has_super, ext2fs_descriptor_block_loc2,
 * ext2fs_super_and_bgd_loc2) because e2image's output depends on their exact answers.
 */
export interface Geometry {
  readonly blockSize: number;
  readonly log2BlockSize: number;
  /** log2(blocks per cluster); 0 without bigalloc. */
  readonly clusterBits: number;
  readonly clusterRatio: number;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly clustersPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodesCount: number;
  readonly inodeSize: number;
  readonly inodesPerBlock: number;
  readonly inodeBlocksPerGroup: number;
  readonly groupCount: number;
  readonly descSize: number;
  readonly descPerBlock: number;
  readonly descBlocks: number;
  readonly featureCompat: number;
  readonly featureIncompat: number;
  readonly featureRoCompat: number;
  readonly firstMetaBg: number;
  readonly reservedGdtBlocks: number;
  readonly backupBgs: readonly [number, number];
}

export function hasGroupDescChecksum(geometry: Geometry): boolean {
  return (
    (geometry.featureRoCompat &
      (EXT4_FEATURE_RO_COMPAT_METADATA_CSUM | EXT4_FEATURE_RO_COMPAT_GDT_CSUM)) !==
    0
  );
}

export function hasMetadataChecksum(geometry: Geometry): boolean {
  return (geometry.featureRoCompat & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM) !== 0;
}

export function groupFirstBlock(geometry: Geometry, group: number): number {
  return geometry.firstDataBlock + group * geometry.blocksPerGroup;
}

/** Blocks in `group` (the last group may be short). */
export function groupBlockCount(geometry: Geometry, group: number): number {
  if (group === geometry.groupCount - 1) {
    const rest = (geometry.blocksCount - geometry.firstDataBlock) % geometry.blocksPerGroup;
    if (rest !== 0) return rest;
  }
  return geometry.blocksPerGroup;
}

function isPowerOf(value: number, base: number): boolean {
  let n = value;
  while (n > 1 && n % base === 0) n /= base;
  return n === 1;
}

/** ext2fs_bg_has_super: does `group` hold a superblock copy? */
export function groupHasSuperblock(geometry: Geometry, group: number): boolean {
  if (group === 0) return true;
  if (geometry.featureCompat & EXT4_FEATURE_COMPAT_SPARSE_SUPER2) {
    return group === geometry.backupBgs[0] || group === geometry.backupBgs[1];
  }
  if (group <= 1 || !(geometry.featureRoCompat & EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER)) return true;
  if (group % 2 === 0) return false;
  return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7);
}

function hasMetaBg(geometry: Geometry): boolean {
  return (geometry.featureIncompat & EXT2_FEATURE_INCOMPAT_META_BG) !== 0;
}

/**
 * ext2fs_descriptor_block_loc2: block holding descriptor block `index` when the
 * superblock in use is at `groupBlock` (s_first_data_block for the primary).
 */
export function descriptorBlockLocation(
  geometry: Geometry,
  groupBlock: number,
  index: number,
): number {
  // On a 1 KiB bigalloc filesystem block 0 is not ours, so group 0's copy shifts by one.
  const groupZeroAdjust =
    index === 0 && geometry.blockSize === 1024 && geometry.clusterRatio > 1 ? 1 : 0;
  if (!hasMetaBg(geometry) || index < geometry.firstMetaBg) {
    return groupBlock + index + 1 + groupZeroAdjust;
  }
  const bg = geometry.descPerBlock * index;
  let hasSuper = groupHasSuperblock(geometry, bg) ? 1 : 0;
  let block = groupFirstBlock(geometry, bg);
  // A non-primary superblock means "use the backup copies": the second group of
  // the meta group holds one, if it exists.
  if (
    groupBlock !== geometry.firstDataBlock &&
    block + hasSuper + geometry.blocksPerGroup < geometry.blocksCount
  ) {
    block += geometry.blocksPerGroup;
    hasSuper = groupHasSuperblock(geometry, bg + 1) ? 1 : 0;
  }
  return block + hasSuper + groupZeroAdjust;
}

export interface SuperAndDescriptorLocation {
  /** Block of the superblock copy in this group, 0 if none (group 0 may say 0 on 4 KiB filesystems). */
  superBlock: number;
  /** First block of the classic (non-meta_bg) descriptor copy, 0 if none. */
  oldDescBlock: number;
  /** The meta_bg descriptor block stored in this group, 0 if none. */
  newDescBlock: number;
  /** Blocks used by superblock, descriptors and reserved GDT blocks. */
  usedBlocks: number;
}

/** ext2fs_super_and_bgd_loc2. */
export function superAndDescriptorLocation(
  geometry: Geometry,
  group: number,
): SuperAndDescriptorLocation {
  let groupBlock = groupFirstBlock(geometry, group);
  if (groupBlock === 0 && geometry.blockSize === 1024) groupBlock = 1;
  const oldDescBlocks = hasMetaBg(geometry)
    ? geometry.firstMetaBg
    : geometry.descBlocks + geometry.reservedGdtBlocks;
  const hasSuper = groupHasSuperblock(geometry, group);
  let superBlock = 0;
  let oldDescBlock = 0;
  let newDescBlock = 0;
  let usedBlocks = 0;
  if (hasSuper) {
    superBlock = groupBlock;
    usedBlocks++;
  }
  const metaBgSize = geometry.descPerBlock;
  const metaBg = Math.floor(group / metaBgSize);
  if (!hasMetaBg(geometry) || metaBg < geometry.firstMetaBg) {
    if (hasSuper) {
      oldDescBlock = groupBlock + 1;
      usedBlocks += oldDescBlocks;
    }
  } else {
    const position = group % metaBgSize;
    if (position === 0 || position === 1 || position === metaBgSize - 1) {
      newDescBlock = groupBlock + (hasSuper ? 1 : 0);
      usedBlocks++;
    }
  }
  return { superBlock, oldDescBlock, newDescBlock, usedBlocks };
}
