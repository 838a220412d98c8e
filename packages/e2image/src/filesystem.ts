import { type BlockDevice, BlockIoError } from '@x/blockio';
import {
  checksumSeed,
  groupDescriptorChecksum,
  superblockChecksum,
  verifyInodeChecksum,
} from './checksum.js';
import { ChecksumReport } from './checksum-report.js';
import { E2imageError, type E2imageWarning, type WarningListener } from './errors.js';
import {
  EXT2_BG_BLOCK_UNINIT,
  EXT2_BG_INODE_UNINIT,
  EXT2_DYNAMIC_REV,
  EXT2_FEATURE_INCOMPAT_META_BG,
  EXT2_GOOD_OLD_INODE_SIZE,
  EXT2_MAX_BLOCK_LOG_SIZE,
  EXT2_MAX_CLUSTER_LOG_SIZE,
  EXT2_MAX_DESC_SIZE,
  EXT2_MIN_BLOCK_LOG_SIZE,
  EXT2_MIN_DESC_SIZE,
  EXT2_MIN_DESC_SIZE_64BIT,
  EXT2_SUPER_MAGIC,
  EXT3_FEATURE_INCOMPAT_JOURNAL_DEV,
  EXT4_FEATURE_INCOMPAT_64BIT,
  EXT4_FEATURE_INCOMPAT_CSUM_SEED,
  EXT4_FEATURE_RO_COMPAT_BIGALLOC,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
  SUPPORTED_INCOMPAT,
} from './format/constants.js';
import {
  BG_CHECKSUM_OFFSET,
  decodeGroupDescriptor,
  type GroupDescriptor,
  groupDescriptor32Struct,
} from './format/group-descriptor.js';
import { type Superblock, superblockStruct } from './format/superblock.js';
import {
  descriptorBlockLocation,
  type Geometry,
  hasGroupDescChecksum,
  hasMetadataChecksum,
} from './geometry.js';
import { Inode } from './inode.js';

export interface OpenFilesystemOptions {
  /**
   * Block number of the superblock to use (e2image -b): a backup copy, read at
   * `superblock * blockSize`. Requires `blockSize`.
   */
  superblock?: number | undefined;
  /** Expected block size (e2image -B); with `superblock`, the unit it is given in. */
  blockSize?: number | undefined;
  /** Problems e2image would report and carry on from (checksums, truncation, …). */
  onWarning?: WarningListener | undefined;
}

/**
 * An ext2/3/4 filesystem on any BlockDevice, opened read-only. Structures are read
 * on demand; nothing is cached beyond the superblock and group descriptors.
 */
export class Filesystem implements Geometry {
  readonly device: BlockDevice;
  /** The superblock in use, decoded. */
  readonly superblock: Superblock;
  /** Its 1024 raw bytes, as e2image's normal image stores them. */
  readonly superblockBytes: Buffer;
  /** Block number the superblock was read from (0 = primary at byte 1024). */
  readonly superblockLocation: number;
  /** The descriptor table as read (descBlocks * blockSize bytes), as a normal image stores it. */
  readonly descriptorTable: Buffer;
  readonly checksums: ChecksumReport;
  readonly warnings: E2imageWarning[] = [];
  /** fs->csum_seed. */
  readonly checksumSeed: number;

  readonly blockSize: number;
  readonly log2BlockSize: number;
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
  readonly is64bit: boolean;
  readonly metadataChecksums: boolean;
  readonly groupDescriptorChecksums: boolean;

  #descriptors: GroupDescriptor[];
  readonly #onWarning: WarningListener | undefined;

  private constructor(
    device: BlockDevice,
    superblockBytes: Buffer,
    superblockLocation: number,
    geometry: Geometry,
    onWarning: WarningListener | undefined,
  ) {
    this.device = device;
    this.superblockBytes = superblockBytes;
    this.superblock = superblockStruct.decode(superblockBytes);
    this.superblockLocation = superblockLocation;
    this.#onWarning = onWarning;
    this.checksums = new ChecksumReport((warning) => this.warn(warning));
    this.blockSize = geometry.blockSize;
    this.log2BlockSize = geometry.log2BlockSize;
    this.clusterBits = geometry.clusterBits;
    this.clusterRatio = geometry.clusterRatio;
    this.blocksCount = geometry.blocksCount;
    this.firstDataBlock = geometry.firstDataBlock;
    this.blocksPerGroup = geometry.blocksPerGroup;
    this.clustersPerGroup = geometry.clustersPerGroup;
    this.inodesPerGroup = geometry.inodesPerGroup;
    this.inodesCount = geometry.inodesCount;
    this.inodeSize = geometry.inodeSize;
    this.inodesPerBlock = geometry.inodesPerBlock;
    this.inodeBlocksPerGroup = geometry.inodeBlocksPerGroup;
    this.groupCount = geometry.groupCount;
    this.descSize = geometry.descSize;
    this.descPerBlock = geometry.descPerBlock;
    this.descBlocks = geometry.descBlocks;
    this.featureCompat = geometry.featureCompat;
    this.featureIncompat = geometry.featureIncompat;
    this.featureRoCompat = geometry.featureRoCompat;
    this.firstMetaBg = geometry.firstMetaBg;
    this.reservedGdtBlocks = geometry.reservedGdtBlocks;
    this.backupBgs = geometry.backupBgs;
    this.is64bit = (geometry.featureIncompat & EXT4_FEATURE_INCOMPAT_64BIT) !== 0;
    this.metadataChecksums = hasMetadataChecksum(geometry);
    this.groupDescriptorChecksums = hasGroupDescChecksum(geometry);
    this.checksumSeed =
      geometry.featureIncompat & EXT4_FEATURE_INCOMPAT_CSUM_SEED
        ? this.superblock.s_checksum_seed
        : checksumSeed(this.superblock.s_uuid);
    this.descriptorTable = Buffer.alloc(0);
    this.#descriptors = [];
  }

  /** Opens the filesystem on `device` (ext2fs_open2 with e2image's flags: read-only, checksums reported not required). */
  static async open(device: BlockDevice, options: OpenFilesystemOptions = {}): Promise<Filesystem> {
    const requestedSuperblock = options.superblock ?? 0;
    const requestedBlockSize = options.blockSize;
    if (requestedSuperblock !== 0 && !requestedBlockSize) {
      throw new E2imageError(
        'BAD_BLOCK_SIZE',
        'a backup superblock (-b) needs the block size (-B) it is counted in',
        { path: device.name },
      );
    }
    if (requestedBlockSize !== undefined && requestedBlockSize !== 0) {
      checkBlockSizeArgument(requestedBlockSize, device.name);
    }
    const superblockOffset =
      requestedSuperblock !== 0
        ? requestedSuperblock * (requestedBlockSize as number)
        : SUPERBLOCK_OFFSET;
    if (!Number.isSafeInteger(superblockOffset)) {
      throw new E2imageError('BAD_SUPERBLOCK', `superblock ${requestedSuperblock} is too far out`, {
        path: device.name,
      });
    }
    const raw = await readExact(device, superblockOffset, SUPERBLOCK_SIZE, 'superblock', {
      block: requestedSuperblock || undefined,
    });
    const geometry = validateSuperblock(raw, device.name, superblockOffset, requestedBlockSize);
    const fs = new Filesystem(device, raw, requestedSuperblock, geometry, options.onWarning);
    if (fs.metadataChecksums) {
      const computed = superblockChecksum(raw);
      fs.checksums.record('superblock', computed === fs.superblock.s_checksum, {
        block: requestedSuperblock,
        stored: fs.superblock.s_checksum,
        computed,
      });
    }
    const fsBytes = fs.blocksCount * fs.blockSize;
    if (device.size < fsBytes) {
      fs.warn({
        code: 'TRUNCATED_DEVICE',
        message: `the device is ${device.size} bytes but the filesystem needs ${fsBytes} (${fs.blocksCount} blocks of ${fs.blockSize}); blocks past the end cannot be read`,
        block: Math.floor(device.size / fs.blockSize),
      });
    }
    await fs.readDescriptors(requestedSuperblock);
    return fs;
  }

  /** Reports a problem e2image would carry on from. */
  warn(warning: E2imageWarning): void {
    if (this.warnings.length < 1000) this.warnings.push(warning);
    this.#onWarning?.(warning);
  }

  get groupDescriptors(): readonly GroupDescriptor[] {
    return this.#descriptors;
  }

  groupDescriptor(group: number): GroupDescriptor {
    const descriptor = this.#descriptors[group];
    if (!descriptor) {
      throw new E2imageError(
        'BAD_GROUP_DESCRIPTOR',
        `no block group ${group} (there are ${this.groupCount})`,
        {
          path: this.device.name,
          group,
        },
      );
    }
    return descriptor;
  }

  hasFeatureCompat(mask: number): boolean {
    return (this.featureCompat & mask) !== 0;
  }

  hasFeatureIncompat(mask: number): boolean {
    return (this.featureIncompat & mask) !== 0;
  }

  hasFeatureRoCompat(mask: number): boolean {
    return (this.featureRoCompat & mask) !== 0;
  }

  /** Reads `count` whole blocks starting at `block`; throws TRUNCATED past the device end. */
  async readBlocks(
    block: number,
    count: number,
    structure: string,
    into?: Buffer,
  ): Promise<Buffer> {
    const length = count * this.blockSize;
    const buffer = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    return readExact(this.device, block * this.blockSize, length, structure, { block }, buffer);
  }

  /** Throws unless blocks [block, block + count) lie inside the filesystem. */
  checkBlockRange(
    block: number,
    count: number,
    code: 'BAD_GROUP_DESCRIPTOR' | 'BAD_EXTENT_TREE' | 'BAD_INDIRECT_BLOCK' | 'BAD_XATTR',
    structure: string,
    context: { group?: number; inode?: number } = {},
  ): void {
    if (block < this.firstDataBlock || block + count > this.blocksCount || count < 0) {
      throw new E2imageError(
        code,
        `block ${block}${count > 1 ? `+${count}` : ''} lies outside the filesystem (blocks ${this.firstDataBlock}..${this.blocksCount - 1})`,
        { path: this.device.name, structure, block, ...context },
      );
    }
  }

  /** The inode table of `group`, checked to lie inside the filesystem. */
  inodeTableLocation(group: number): number {
    const descriptor = this.groupDescriptor(group);
    if (descriptor.inodeTable === 0) {
      throw new E2imageError('BAD_GROUP_DESCRIPTOR', `group ${group} has no inode table`, {
        path: this.device.name,
        group,
        structure: `group descriptor ${group}`,
      });
    }
    this.checkBlockRange(
      descriptor.inodeTable,
      this.inodeBlocksPerGroup,
      'BAD_GROUP_DESCRIPTOR',
      `inode table of group ${group}`,
      { group },
    );
    return descriptor.inodeTable;
  }

  /** Reads inode `ino` (1-based) and verifies its checksum (reported, not required). */
  async readInode(ino: number): Promise<Inode> {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.inodesCount) {
      throw new E2imageError(
        'BAD_INODE_NUMBER',
        `inode ${ino} does not exist (inodes are 1..${this.inodesCount})`,
        { path: this.device.name, inode: ino },
      );
    }
    const group = Math.floor((ino - 1) / this.inodesPerGroup);
    const index = (ino - 1) % this.inodesPerGroup;
    const table = this.inodeTableLocation(group);
    const byteOffset = table * this.blockSize + index * this.inodeSize;
    const bytes = await readExact(this.device, byteOffset, this.inodeSize, `inode ${ino}`, {
      inode: ino,
      group,
    });
    this.verifyInode(ino, bytes);
    return new Inode(ino, bytes, this.is64bit);
  }

  /** Wraps inode bytes already read (from an inode table scan). */
  inodeFromBytes(ino: number, bytes: Buffer): Inode {
    return new Inode(ino, bytes, this.is64bit);
  }

  verifyInode(ino: number, bytes: Uint8Array): boolean {
    if (!this.metadataChecksums) return true;
    const result = verifyInodeChecksum(this.checksumSeed, ino, bytes, this.inodeSize);
    this.checksums.record('inode', result.ok, {
      inode: ino,
      stored: result.stored,
      computed: result.computed,
    });
    return result.ok;
  }

  /** EXT2FS_B2C */
  blockToCluster(block: number): number {
    return Math.floor(block / this.clusterRatio);
  }

  private async readDescriptors(superblockLocation: number): Promise<void> {
    const groupBlock = superblockLocation || this.firstDataBlock;
    // The table's size comes from the superblock (s_blocks_count over
    // s_blocks_per_group): check that the device can hold it before allocating,
    // so a forged geometry is an error, not a multi-gigabyte allocation.
    const tableBytes = this.descBlocks * this.blockSize;
    if (tableBytes > this.device.size || tableBytes > MAX_DESCRIPTOR_TABLE_BYTES) {
      throw new E2imageError(
        tableBytes > this.device.size ? 'TRUNCATED' : 'BAD_SUPERBLOCK',
        `${this.groupCount} block groups need ${this.descBlocks} descriptor blocks (${tableBytes} bytes), more than the ${tableBytes > this.device.size ? `${this.device.size}-byte device holds` : 'reader supports'}`,
        {
          path: this.device.name,
          block: groupBlock + 1,
          offset: (groupBlock + 1) * this.blockSize,
          structure: 'group descriptor table',
        },
      );
    }
    const table = Buffer.alloc(tableBytes);
    // Without meta_bg the descriptor blocks are contiguous: one read.
    const contiguous = !(this.featureIncompat & EXT2_FEATURE_INCOMPAT_META_BG);
    if (contiguous) {
      const first = descriptorBlockLocation(this, groupBlock, 0);
      this.checkDescriptorBlock(first, this.descBlocks);
      await this.readBlocks(first, this.descBlocks, 'group descriptor table', table);
    } else {
      for (let index = 0; index < this.descBlocks; index++) {
        const block = descriptorBlockLocation(this, groupBlock, index);
        this.checkDescriptorBlock(block, 1);
        await this.readBlocks(
          block,
          1,
          `group descriptor block ${index}`,
          table.subarray(index * this.blockSize),
        );
      }
    }
    (this as { descriptorTable: Buffer }).descriptorTable = table;
    const csum = this.groupDescriptorChecksums;
    // ext2fs_open2: a backup superblock's descriptors may be stale, so the
    // lazy-init flags are dropped and the unused-inode counts reset.
    const fromBackup = superblockLocation > 1 && csum;
    const descriptors: GroupDescriptor[] = [];
    for (let group = 0; group < this.groupCount; group++) {
      const offset = group * this.descSize;
      const bytes = table.subarray(offset, offset + this.descSize);
      if (fromBackup) this.resetLazyInit(bytes, group);
      else if (csum) this.verifyDescriptor(bytes, group);
      descriptors.push(decodeGroupDescriptor(table, group, this.descSize, this.is64bit));
    }
    this.#descriptors = descriptors;
  }

  private checkDescriptorBlock(block: number, count: number): void {
    if (
      block + count > this.blocksCount ||
      block + count > Math.ceil(this.device.size / this.blockSize)
    ) {
      throw new E2imageError(
        block + count > this.blocksCount ? 'BAD_SUPERBLOCK' : 'TRUNCATED',
        `the group descriptors (blocks ${block}..${block + count - 1}) lie past the end of the ${block + count > this.blocksCount ? 'filesystem' : 'device'}`,
        { path: this.device.name, block, structure: 'group descriptor table' },
      );
    }
  }

  private verifyDescriptor(bytes: Buffer, group: number): void {
    const stored = bytes.readUInt16LE(BG_CHECKSUM_OFFSET);
    const computed = this.descriptorChecksum(group, bytes);
    this.checksums.record('group descriptor', stored === computed, { group, stored, computed });
  }

  /** ext2fs_group_desc_csum for a descriptor's bytes. */
  descriptorChecksum(group: number, bytes: Uint8Array): number {
    return groupDescriptorChecksum(
      this.metadataChecksums,
      this.checksumSeed,
      this.superblock.s_uuid,
      group,
      bytes,
    );
  }

  /** Whether group `group`'s descriptor checksum is right (ext2fs_group_desc_csum_verify). */
  descriptorChecksumOk(group: number): boolean {
    if (!this.groupDescriptorChecksums) return true;
    const offset = group * this.descSize;
    const bytes = this.descriptorTable.subarray(offset, offset + this.descSize);
    return bytes.readUInt16LE(BG_CHECKSUM_OFFSET) === this.descriptorChecksum(group, bytes);
  }

  private resetLazyInit(bytes: Buffer, group: number): void {
    const flagsOffset = groupDescriptor32Struct.offsetOf('bg_flags');
    bytes.writeUInt16LE(
      bytes.readUInt16LE(flagsOffset) & ~(EXT2_BG_BLOCK_UNINIT | EXT2_BG_INODE_UNINIT),
      flagsOffset,
    );
    bytes.writeUInt16LE(0, groupDescriptor32Struct.offsetOf('bg_itable_unused_lo'));
    if (this.is64bit) bytes.writeUInt16LE(0, 0x32);
    bytes.writeUInt16LE(this.descriptorChecksum(group, bytes), BG_CHECKSUM_OFFSET);
  }
}

function checkBlockSizeArgument(blockSize: number, path: string): void {
  if (
    !Number.isInteger(blockSize) ||
    blockSize < 1 << EXT2_MIN_BLOCK_LOG_SIZE ||
    blockSize > 1 << EXT2_MAX_BLOCK_LOG_SIZE ||
    (blockSize & (blockSize - 1)) !== 0
  ) {
    throw new E2imageError(
      'BAD_BLOCK_SIZE',
      `block size ${blockSize} is not a power of two between 1024 and 65536`,
      { path },
    );
  }
}

/**
 * 1 GiB of group descriptors: 2^25 groups of 64 bytes, 4 PiB of 4 KiB blocks in
 * 128 MiB groups — past the 2^53-byte limit of byte offsets anyway.
 */
const MAX_DESCRIPTOR_TABLE_BYTES = 1 << 30;

/** Reads exactly `length` bytes or throws TRUNCATED naming the structure. */
export async function readExact(
  device: BlockDevice,
  offset: number,
  length: number,
  structure: string,
  context: {
    block?: number | undefined;
    inode?: number | undefined;
    group?: number | undefined;
  } = {},
  into?: Buffer,
): Promise<Buffer> {
  if (offset + length > device.size && !device.zeroExtends) {
    throw new E2imageError(
      'TRUNCATED',
      `its ${length} bytes run past the end of the device (${device.size} bytes)`,
      { path: device.name, offset, structure, ...context },
    );
  }
  const buffer = into ?? Buffer.allocUnsafe(length);
  try {
    await device.read(offset, buffer);
  } catch (error) {
    if (
      error instanceof BlockIoError &&
      (error.code === 'OUT_OF_RANGE' || error.code === 'SHORT_READ')
    ) {
      throw new E2imageError('TRUNCATED', `${structure}: ${error.message}`, {
        path: device.name,
        offset,
        structure,
        ...context,
        cause: error,
      });
    }
    throw error;
  }
  return buffer;
}

/** The checks of ext2fs_open2, each naming the field and the value found. */
export function validateSuperblock(
  raw: Buffer,
  path: string,
  offset: number,
  requestedBlockSize: number | undefined,
): Geometry {
  const sb = superblockStruct.decode(raw);
  const bad = (message: string, code: 'BAD_SUPERBLOCK' | 'BAD_MAGIC' = 'BAD_SUPERBLOCK') =>
    new E2imageError(code, message, { path, offset, structure: 'superblock' });
  if (sb.s_magic !== EXT2_SUPER_MAGIC) {
    throw bad(
      `no ext2/3/4 superblock here: s_magic is 0x${sb.s_magic.toString(16)}, expected 0xef53`,
      'BAD_MAGIC',
    );
  }
  if (sb.s_rev_level > EXT2_DYNAMIC_REV) {
    throw bad(`s_rev_level ${sb.s_rev_level} is newer than this reader (at most 1)`);
  }
  const unsupported = sb.s_feature_incompat & ~SUPPORTED_INCOMPAT;
  if (unsupported !== 0) {
    throw new E2imageError(
      'UNSUPPORTED_FEATURE',
      `the filesystem uses incompatible features this reader does not know (s_feature_incompat bits 0x${unsupported.toString(16)})`,
      { path, offset, structure: 'superblock' },
    );
  }
  if (sb.s_feature_incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV) {
    throw new E2imageError(
      'UNSUPPORTED_FEATURE',
      'this is an external journal device, not a filesystem',
      { path, offset, structure: 'superblock' },
    );
  }
  const maxLog = EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE;
  if (sb.s_log_block_size > maxLog) {
    throw bad(`s_log_block_size ${sb.s_log_block_size} means a block size above 64 KiB`);
  }
  const log2BlockSize = sb.s_log_block_size + EXT2_MIN_BLOCK_LOG_SIZE;
  const blockSize = 2 ** log2BlockSize;
  if (requestedBlockSize && requestedBlockSize !== blockSize) {
    throw new E2imageError(
      'BAD_BLOCK_SIZE',
      `the superblock says the block size is ${blockSize}, not the ${requestedBlockSize} given`,
      { path, offset, structure: 'superblock' },
    );
  }
  const bigalloc = (sb.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC) !== 0;
  let clusterBits = 0;
  if (bigalloc) {
    if (
      sb.s_log_cluster_size < sb.s_log_block_size ||
      sb.s_log_cluster_size + EXT2_MIN_BLOCK_LOG_SIZE > EXT2_MAX_CLUSTER_LOG_SIZE
    ) {
      throw bad(
        `s_log_cluster_size ${sb.s_log_cluster_size} is impossible with s_log_block_size ${sb.s_log_block_size}`,
      );
    }
    clusterBits = sb.s_log_cluster_size - sb.s_log_block_size;
  } else if (sb.s_log_cluster_size !== sb.s_log_block_size) {
    throw bad(
      `s_log_cluster_size ${sb.s_log_cluster_size} differs from s_log_block_size ${sb.s_log_block_size} without bigalloc`,
    );
  }
  const clusterRatio = 2 ** clusterBits;
  const inodeSize = sb.s_rev_level === 0 ? EXT2_GOOD_OLD_INODE_SIZE : sb.s_inode_size;
  if (
    inodeSize < EXT2_GOOD_OLD_INODE_SIZE ||
    inodeSize > blockSize ||
    (inodeSize & (inodeSize - 1)) !== 0
  ) {
    throw bad(
      `s_inode_size ${inodeSize} must be a power of two from 128 to the block size ${blockSize}`,
    );
  }
  const maxPerGroup = 8 * blockSize;
  if (sb.s_blocks_per_group === 0 || sb.s_clusters_per_group === 0) {
    throw bad('s_blocks_per_group or s_clusters_per_group is 0');
  }
  if (sb.s_clusters_per_group > maxPerGroup || sb.s_clusters_per_group % 8 !== 0) {
    throw bad(
      `s_clusters_per_group ${sb.s_clusters_per_group} does not fit one ${blockSize}-byte bitmap block`,
    );
  }
  if (sb.s_blocks_per_group !== sb.s_clusters_per_group * clusterRatio) {
    throw bad(
      `s_blocks_per_group ${sb.s_blocks_per_group} is not s_clusters_per_group ${sb.s_clusters_per_group} × ${clusterRatio}`,
    );
  }
  if (
    sb.s_inodes_per_group === 0 ||
    sb.s_inodes_per_group > maxPerGroup ||
    sb.s_inodes_per_group % 8 !== 0
  ) {
    throw bad(
      `s_inodes_per_group ${sb.s_inodes_per_group} does not fit one ${blockSize}-byte bitmap block`,
    );
  }
  const is64bit = (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT) !== 0;
  const blocksCount = sb.s_blocks_count_lo + (is64bit ? sb.s_blocks_count_hi * 2 ** 32 : 0);
  if (!Number.isSafeInteger(blocksCount * blockSize)) {
    throw bad(`s_blocks_count ${blocksCount} × ${blockSize} bytes exceeds 2^53 bytes`);
  }
  if (sb.s_first_data_block >= blocksCount) {
    throw bad(
      `s_first_data_block ${sb.s_first_data_block} is not below s_blocks_count ${blocksCount}`,
    );
  }
  const groupCount = Math.ceil((blocksCount - sb.s_first_data_block) / sb.s_blocks_per_group);
  if (groupCount * sb.s_inodes_per_group !== sb.s_inodes_count) {
    throw bad(
      `s_inodes_count ${sb.s_inodes_count} is not ${groupCount} groups × ${sb.s_inodes_per_group} inodes`,
    );
  }
  let descSize = EXT2_MIN_DESC_SIZE;
  if (is64bit) {
    descSize = sb.s_desc_size;
    if (
      descSize < EXT2_MIN_DESC_SIZE_64BIT ||
      descSize > EXT2_MAX_DESC_SIZE ||
      (descSize & (descSize - 1)) !== 0
    ) {
      throw bad(`s_desc_size ${descSize} must be a power of two from 64 to 1024 with 64bit`);
    }
  }
  const descPerBlock = blockSize / descSize;
  const descBlocks = Math.ceil(groupCount / descPerBlock);
  const metaBg = (sb.s_feature_incompat & EXT2_FEATURE_INCOMPAT_META_BG) !== 0;
  if (metaBg && sb.s_first_meta_bg > descBlocks) {
    throw bad(
      `s_first_meta_bg ${sb.s_first_meta_bg} is beyond the ${descBlocks} descriptor blocks`,
    );
  }
  const inodeBlocksPerGroup = Math.ceil((sb.s_inodes_per_group * inodeSize) / blockSize);
  return {
    blockSize,
    log2BlockSize,
    clusterBits,
    clusterRatio,
    blocksCount,
    firstDataBlock: sb.s_first_data_block,
    blocksPerGroup: sb.s_blocks_per_group,
    clustersPerGroup: sb.s_clusters_per_group,
    inodesPerGroup: sb.s_inodes_per_group,
    inodesCount: sb.s_inodes_count,
    inodeSize,
    inodesPerBlock: blockSize / inodeSize,
    inodeBlocksPerGroup,
    groupCount,
    descSize,
    descPerBlock,
    descBlocks,
    featureCompat: sb.s_feature_compat,
    featureIncompat: sb.s_feature_incompat,
    featureRoCompat: sb.s_feature_ro_compat,
    firstMetaBg: sb.s_first_meta_bg,
    reservedGdtBlocks: sb.s_reserved_gdt_blocks,
    backupBgs: [sb.s_backup_bgs_0, sb.s_backup_bgs_1],
  };
}
