import { BlockIoError, type BlockIoErrorOptions } from '@x/blockio';

/**
 * Stable codes for problems found in an ext2/3/4 filesystem or an e2image file.
 * Scripts and tests match on these; messages are for people.
 */
export type E2imageErrorCode =
  /** No ext2/3/4 superblock magic where one was expected. */
  | 'BAD_MAGIC'
  /** Superblock fields that cannot describe a real filesystem. */
  | 'BAD_SUPERBLOCK'
  /** -B/blockSize does not match the superblock, or -b given without -B. */
  | 'BAD_BLOCK_SIZE'
  /** A feature this reader does not understand (journal device, unknown incompat bit). */
  | 'UNSUPPORTED_FEATURE'
  /** A group descriptor points outside the filesystem. */
  | 'BAD_GROUP_DESCRIPTOR'
  /** The device ends before a structure the filesystem says is there. */
  | 'TRUNCATED'
  /** An inode number outside 1..s_inodes_count. */
  | 'BAD_INODE_NUMBER'
  /** Extent tree header, depth or pointer is wrong (includes loops). */
  | 'BAD_EXTENT_TREE'
  /** An indirect/double/triple-indirect block number outside the filesystem. */
  | 'BAD_INDIRECT_BLOCK'
  /** A directory block whose records overlap or run past the block. */
  | 'BAD_DIRECTORY'
  /** An extended attribute block or in-inode area that does not parse. */
  | 'BAD_XATTR'
  /** Inline data that does not parse. */
  | 'BAD_INLINE_DATA'
  /** An e2image "normal" image whose header or layout is wrong (one too big to write is TOO_LARGE). */
  | 'BAD_IMAGE'
  /** The target of an install is mounted or otherwise busy. */
  | 'TARGET_BUSY'
  /** Something that is not a directory was listed, or used as a directory in a path. */
  | 'NOT_A_DIRECTORY'
  /** A path inside the filesystem names an entry its directory does not have. */
  | 'NOT_FOUND'
  /** A symlink was asked for (readSymlink) and the inode is something else. */
  | 'NOT_A_SYMLINK'
  /**
   * More than a limit allows: readFile's maxBytes (read it through InodeDevice), or a
   * filesystem whose normal image needs offsets its 32-bit header cannot record (use -r/-Q).
   */
  | 'TOO_LARGE';

/** Every error from @x/e2image: a BlockIoError with an ext-specific code and location. */
export class E2imageError extends BlockIoError {
  /** Block group the problem is in, when there is one. */
  readonly group: number | undefined;
  /** Inode the problem is in, when there is one. */
  readonly inode: number | undefined;
  /** Filesystem block number the problem is in, when there is one. */
  readonly block: number | undefined;

  constructor(code: E2imageErrorCode, message: string, options: E2imageErrorOptions = {}) {
    super(code, message, options);
    this.group = options.group;
    this.inode = options.inode;
    this.block = options.block;
  }

  /** The one-line description, ending with the stable code scripts can match. */
  override describe(): string {
    return `${super.describe()} [${this.code}]`;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), group: this.group, inode: this.inode, block: this.block };
  }
}

export interface E2imageErrorOptions extends BlockIoErrorOptions {
  group?: number | undefined;
  inode?: number | undefined;
  block?: number | undefined;
}

/** A problem e2image itself would report and carry on from. */
export interface E2imageWarning {
  readonly code: E2imageWarningCode;
  readonly message: string;
  readonly group?: number;
  readonly inode?: number;
  readonly block?: number;
}

export type E2imageWarningCode =
  /** A metadata checksum did not match (metadata_csum / gdt_csum). */
  | 'CHECKSUM'
  /** A block number outside the filesystem; e2image's bitmap ignores it. */
  | 'BLOCK_OUT_OF_RANGE'
  /** The device is shorter than the filesystem. */
  | 'TRUNCATED_DEVICE'
  /** A directory block with a bad rec_len or name_len, found while scrambling. */
  | 'CORRUPT_DIRECTORY_BLOCK'
  /** A bitmap says a block/inode is free that the tables use, or the reverse. */
  | 'BITMAP_MISMATCH'
  /**
   * An inode's extent tree root fails libext2fs' header check: e2image copies none
   * of its blocks (ext2fs_block_iterate3 reports success having walked nothing).
   */
  | 'EXTENT_TREE_SKIPPED'
  /**
   * An extent tree deeper than the format allows, or a node whose eh_depth is not
   * one less than its parent's: walked by the root's depth, as libext2fs does.
   */
  | 'EXTENT_TREE_DEPTH'
  /** The bad-block inode cannot be walked: as in libext2fs, no block counts as bad. */
  | 'BAD_BLOCK_LIST'
  /**
   * Inode table blocks on the bad-block list: libext2fs' inode scan skips the
   * inodes in them, so e2image copies none of their blocks.
   */
  | 'INODES_IN_BAD_BLOCKS'
  /** An extent or indirect block referenced more than once in one inode: walked once. */
  | 'MAPPING_BLOCK_REUSED'
  /**
   * A bad indirect block pointer that e2image steps over: libext2fs keeps only the
   * status of its last read, so a later good indirect block hides the error.
   */
  | 'BAD_BLOCK_MAP';

export type WarningListener = (warning: E2imageWarning) => void;
