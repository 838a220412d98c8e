import {
  type BlockDevice,
  FileDevice,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import {
  bitmapChecksum,
  checksumSeed,
  groupDescriptorChecksum,
  superblockChecksum,
} from './checksum.js';
import { E2imageError } from './errors.js';
import { readExact, validateSuperblock } from './filesystem.js';
import {
  EXT2_BG_BLOCK_UNINIT,
  EXT2_BG_INODE_UNINIT,
  EXT2_FEATURE_INCOMPAT_META_BG,
  EXT4_FEATURE_INCOMPAT_64BIT,
  EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
} from './format/constants.js';
import {
  BG_CHECKSUM_OFFSET,
  decodeGroupDescriptor,
  EXT4_BG_BLOCK_BITMAP_CSUM_HI_END,
  EXT4_BG_INODE_BITMAP_CSUM_HI_END,
  groupDescriptor32Struct,
  groupDescriptor64Struct,
} from './format/group-descriptor.js';
import { superblockStruct } from './format/superblock.js';
import {
  type Geometry,
  hasGroupDescChecksum,
  hasMetadataChecksum,
  superAndDescriptorLocation,
} from './geometry.js';
import { deviceUse, isBusy } from './mount-state.js';
import { openNormalImage } from './normal-image.js';

export interface InstallOptions extends LongRunningOptions {
  /** Recorded as s_wtime (default: now). */
  time?: Date | undefined;
}

export interface InstallResult {
  /** Inode table bytes written. */
  inodeTableBytes: number;
  /** Block and inode bitmap blocks written. */
  bitmapBlocks: number;
  /** Group descriptor blocks written. */
  descriptorBlocks: number;
}

/**
 * e2image -I: writes the metadata of a normal image back onto the filesystem it
 * was taken from — every inode table, the block and inode bitmaps (with their
 * checksums), the group descriptors and the primary superblock — as
 * install_image + ext2fs_close do. Backup superblocks are left alone
 * (EXT2_FLAG_MASTER_SB_ONLY).
 */
export async function installNormalImage(
  image: BlockDevice,
  target: BlockDevice,
  options: InstallOptions = {},
): Promise<InstallResult> {
  const opened = await openNormalImage(image);
  const blockSize = opened.blockSize;
  // ext2fs_open2 with EXT2_FLAG_IMAGE_FILE: superblock in block 1, descriptors from block 2.
  const superblock = await readExact(image, blockSize, SUPERBLOCK_SIZE, 'image superblock');
  const geometry = validateSuperblock(superblock, image.name, blockSize, blockSize);
  const sb = superblockStruct.decode(superblock);
  const is64bit = (geometry.featureIncompat & EXT4_FEATURE_INCOMPAT_64BIT) !== 0;
  const descriptors = await readExact(
    image,
    2 * blockSize,
    geometry.descBlocks * blockSize,
    'image group descriptors',
  );
  const targetBytes = geometry.blocksCount * blockSize;
  if (target.size < targetBytes) {
    throw new E2imageError(
      'TRUNCATED',
      `the target is ${target.size} bytes but the image describes a ${targetBytes}-byte filesystem`,
      { path: target.name },
    );
  }
  const csum = hasGroupDescChecksum(geometry);
  const metadataCsum = hasMetadataChecksum(geometry);
  const seed =
    geometry.featureIncompat & EXT4_FEATURE_INCOMPAT_CSUM_SEED
      ? sb.s_checksum_seed
      : checksumSeed(sb.s_uuid);
  const descriptor = (group: number) =>
    decodeGroupDescriptor(descriptors, group, geometry.descSize, is64bit);
  const descriptorBytes = (group: number) =>
    descriptors.subarray(group * geometry.descSize, (group + 1) * geometry.descSize);
  const setDescriptorChecksum = (group: number) => {
    if (!csum) return;
    const bytes = descriptorBytes(group);
    bytes.writeUInt16LE(
      groupDescriptorChecksum(metadataCsum, seed, sb.s_uuid, group, bytes),
      BG_CHECKSUM_OFFSET,
    );
  };

  // ext2fs_image_inode_read: the tables follow each other from offset_inode.
  const tableBytes = geometry.inodeBlocksPerGroup * blockSize;
  const progress = new ProgressTracker(
    'install inode tables',
    tableBytes * geometry.groupCount,
    options.onProgress,
  );
  const chunk = Buffer.allocUnsafe(Math.max(blockSize, Math.min(tableBytes, 1 << 20)));
  let source = opened.header.offset_inode;
  for (let group = 0; group < geometry.groupCount; group++) {
    const table = descriptor(group).inodeTable;
    if (table === 0) {
      throw new E2imageError('BAD_GROUP_DESCRIPTOR', `group ${group} has no inode table`, {
        path: image.name,
        group,
      });
    }
    if (table + geometry.inodeBlocksPerGroup > geometry.blocksCount) {
      throw new E2imageError(
        'BAD_GROUP_DESCRIPTOR',
        `the inode table of group ${group} (block ${table}) lies outside the filesystem`,
        { path: image.name, group, block: table },
      );
    }
    for (let done = 0; done < tableBytes; done += chunk.length) {
      throwIfAborted(options.signal, target.name);
      const length = Math.min(chunk.length, tableBytes - done);
      const piece = await readExact(
        image,
        source,
        length,
        `inode table of group ${group} in the image`,
        { group },
        chunk.subarray(0, length),
      );
      await target.write(table * blockSize + done, piece);
      source += length;
      progress.advance(length);
    }
  }
  progress.finish();

  // ext2fs_read_bitmaps (image file) then write_bitmaps.
  const blockBytes = geometry.clustersPerGroup / 8;
  const inodeBytes = geometry.inodesPerGroup / 8;
  const blockMap = await readExact(
    image,
    opened.header.offset_blockmap,
    blockBytes * geometry.groupCount,
    'image block bitmap',
  );
  const inodeMap = await readExact(
    image,
    opened.header.offset_inodemap,
    inodeBytes * geometry.groupCount,
    'image inode bitmap',
  );
  let bitmapBlocks = 0;
  const bitmapBuffer = Buffer.alloc(blockSize);
  const lastGroupBits = lastGroupClusters(geometry);
  for (let group = 0; group < geometry.groupCount; group++) {
    const current = descriptor(group);
    const bytes = descriptorBytes(group);
    if (!(csum && current.flags & EXT2_BG_BLOCK_UNINIT)) {
      bitmapBuffer.fill(0xff);
      blockMap.copy(bitmapBuffer, 0, group * blockBytes, (group + 1) * blockBytes);
      if (group === geometry.groupCount - 1 && lastGroupBits !== 0) {
        for (let bit = lastGroupBits; bit < blockSize * 8; bit++) {
          bitmapBuffer[bit >>> 3] = (bitmapBuffer[bit >>> 3] as number) | (1 << (bit & 7));
        }
      }
      if (metadataCsum) {
        const crc = bitmapChecksum(seed, bitmapBuffer, blockBytes);
        bytes.writeUInt16LE(
          crc & 0xffff,
          groupDescriptor32Struct.offsetOf('bg_block_bitmap_csum_lo'),
        );
        if (geometry.descSize >= EXT4_BG_BLOCK_BITMAP_CSUM_HI_END) {
          bytes.writeUInt16LE(
            crc >>> 16,
            groupDescriptor64Struct.offsetOf('bg_block_bitmap_csum_hi'),
          );
        }
      }
      setDescriptorChecksum(group);
      if (current.blockBitmap !== 0) {
        await target.write(current.blockBitmap * blockSize, bitmapBuffer);
        bitmapBlocks++;
      }
    }
    if (!(csum && current.flags & EXT2_BG_INODE_UNINIT)) {
      bitmapBuffer.fill(0xff);
      inodeMap.copy(bitmapBuffer, 0, group * inodeBytes, (group + 1) * inodeBytes);
      if (metadataCsum) {
        const crc = bitmapChecksum(seed, bitmapBuffer, inodeBytes);
        bytes.writeUInt16LE(
          crc & 0xffff,
          groupDescriptor32Struct.offsetOf('bg_inode_bitmap_csum_lo'),
        );
        if (geometry.descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END) {
          bytes.writeUInt16LE(
            crc >>> 16,
            groupDescriptor64Struct.offsetOf('bg_inode_bitmap_csum_hi'),
          );
        }
      }
      setDescriptorChecksum(group);
      if (current.inodeBitmap !== 0) {
        await target.write(current.inodeBitmap * blockSize, bitmapBuffer);
        bitmapBlocks++;
      }
    }
  }

  // ext2fs_flush2 with EXT2_FLAG_MASTER_SB_ONLY: group 0's descriptor copy and
  // every meta_bg descriptor block; no backup superblocks.
  const metaBg = (geometry.featureIncompat & EXT2_FEATURE_INCOMPAT_META_BG) !== 0;
  const oldDescBlocks = metaBg
    ? Math.min(geometry.firstMetaBg, geometry.descBlocks)
    : geometry.descBlocks;
  let descriptorBlocks = 0;
  for (let group = 0; group < geometry.groupCount; group++) {
    const location = superAndDescriptorLocation(geometry, group);
    if (location.oldDescBlock && group === 0 && oldDescBlocks > 0) {
      await target.write(
        location.oldDescBlock * blockSize,
        descriptors.subarray(0, oldDescBlocks * blockSize),
      );
      descriptorBlocks += oldDescBlocks;
    }
    if (location.newDescBlock) {
      const index = Math.floor(group / geometry.descPerBlock);
      await target.write(
        location.newDescBlock * blockSize,
        descriptors.subarray(index * blockSize, (index + 1) * blockSize),
      );
      descriptorBlocks++;
    }
  }

  // The primary superblock, stamped as ext2fs_close stamps it.
  const written = Buffer.from(superblock);
  const time = Math.floor((options.time ?? new Date()).getTime() / 1000);
  written.writeUInt32LE(time % 2 ** 32, superblockStruct.offsetOf('s_wtime'));
  written.writeUInt8(Math.floor(time / 2 ** 32) & 0xff, superblockStruct.offsetOf('s_wtime_hi'));
  written.writeUInt16LE(0, superblockStruct.offsetOf('s_block_group_nr'));
  const kbytesOffset = superblockStruct.offsetOf('s_kbytes_written');
  const kbytes = written.readBigUInt64LE(kbytesOffset);
  if (kbytes !== 0n) {
    const bytes = tableBytes * geometry.groupCount + bitmapBlocks * blockSize;
    const extra = BigInt(
      Math.floor(bytes / 1024) + Math.floor((geometry.descBlocks + 1) / (blockSize / 1024)),
    );
    written.writeBigUInt64LE(kbytes + extra, kbytesOffset);
  }
  if (metadataCsum)
    written.writeUInt32LE(superblockChecksum(written), superblockStruct.offsetOf('s_checksum'));
  await target.write(SUPERBLOCK_OFFSET, written);
  await target.flush();
  return { inodeTableBytes: tableBytes * geometry.groupCount, bitmapBlocks, descriptorBlocks };
}

/** Clusters in the last group when it is short (EXT2FS_NUM_B2C of the remainder), else 0. */
function lastGroupClusters(geometry: Geometry): number {
  const rest = (geometry.blocksCount - geometry.firstDataBlock) % geometry.blocksPerGroup;
  return Math.ceil(rest / geometry.clusterRatio);
}

export interface InstallFileOptions extends InstallOptions {
  /** Write even if the target is mounted or otherwise in use (e2image has no such check; -f). */
  force?: boolean | undefined;
}

/**
 * e2image -I device image-file: refuses a mounted or busy target unless `force`.
 */
export async function installNormalImageFile(
  targetPath: string,
  imagePath: string,
  options: InstallFileOptions = {},
): Promise<InstallResult> {
  if (!options.force) {
    const use = await deviceUse(targetPath);
    if (isBusy(use)) {
      const what = [
        ...use.mounts.map(
          (m) => `mounted ${m.readOnly ? 'read-only' : 'read-write'} on ${m.mountPoint}`,
        ),
        ...use.loopDevices.map((loop) => `attached to ${loop}`),
        ...(use.exclusiveOpenRefused ? ['held open exclusively by the kernel'] : []),
      ];
      throw new E2imageError(
        'TARGET_BUSY',
        `refusing to install onto a target in use (${what.join('; ')}); unmount it, or use -f if you are sure`,
        { path: targetPath },
      );
    }
  }
  const image = await FileDevice.open(imagePath);
  try {
    const target = await FileDevice.open(targetPath, { writable: true });
    try {
      return await installNormalImage(image, target, options);
    } finally {
      await target.close();
    }
  } finally {
    await image.close();
  }
}
