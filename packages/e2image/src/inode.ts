import {
  EXT2_IND_BLOCK,
  EXT4_EXTENTS_FL,
  EXT4_HUGE_FILE_FL,
  EXT4_INLINE_DATA_FL,
  LINUX_S_IFBLK,
  LINUX_S_IFCHR,
  LINUX_S_IFDIR,
  LINUX_S_IFIFO,
  LINUX_S_IFLNK,
  LINUX_S_IFMT,
  LINUX_S_IFREG,
  LINUX_S_IFSOCK,
} from './format/constants.js';
import {
  I_BLOCK,
  I_BLOCK_SIZE,
  I_BLOCKS_HIGH,
  I_BLOCKS_LO,
  I_EXTRA_ISIZE,
  I_FILE_ACL_HIGH,
  I_FILE_ACL_LO,
  I_FLAGS,
  I_GENERATION,
  I_LINKS_COUNT,
  I_MODE,
  I_SIZE_HIGH,
  I_SIZE_LO,
  I_TRANSLATOR,
  inodeStruct,
  type RawInode,
} from './format/inode.js';

export type FileType =
  | 'regular'
  | 'directory'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'fifo'
  | 'socket'
  | 'unknown';

const TYPES: Record<number, FileType> = {
  [LINUX_S_IFREG]: 'regular',
  [LINUX_S_IFDIR]: 'directory',
  [LINUX_S_IFLNK]: 'symlink',
  [LINUX_S_IFCHR]: 'character-device',
  [LINUX_S_IFBLK]: 'block-device',
  [LINUX_S_IFIFO]: 'fifo',
  [LINUX_S_IFSOCK]: 'socket',
};

/**
 * One inode as stored: the raw bytes (s_inode_size of them) plus accessors for
 * what the tools need. `decode()` gives every field of the table.
 */
export class Inode {
  readonly ino: number;
  readonly bytes: Buffer;
  readonly #is64bit: boolean;

  constructor(ino: number, bytes: Buffer, is64bit: boolean) {
    this.ino = ino;
    this.bytes = bytes;
    this.#is64bit = is64bit;
  }

  decode(): RawInode {
    const padded =
      this.bytes.length >= inodeStruct.size
        ? this.bytes
        : Buffer.concat([this.bytes, Buffer.alloc(inodeStruct.size - this.bytes.length)]);
    return inodeStruct.decode(padded);
  }

  get mode(): number {
    return this.bytes.readUInt16LE(I_MODE);
  }

  get fileType(): FileType {
    return TYPES[this.mode & LINUX_S_IFMT] ?? 'unknown';
  }

  get isDirectory(): boolean {
    return (this.mode & LINUX_S_IFMT) === LINUX_S_IFDIR;
  }

  get isRegular(): boolean {
    return (this.mode & LINUX_S_IFMT) === LINUX_S_IFREG;
  }

  get isSymlink(): boolean {
    return (this.mode & LINUX_S_IFMT) === LINUX_S_IFLNK;
  }

  get linksCount(): number {
    return this.bytes.readUInt16LE(I_LINKS_COUNT);
  }

  get flags(): number {
    return this.bytes.readUInt32LE(I_FLAGS);
  }

  get usesExtents(): boolean {
    return (this.flags & EXT4_EXTENTS_FL) !== 0;
  }

  get hasInlineData(): boolean {
    return (this.flags & EXT4_INLINE_DATA_FL) !== 0;
  }

  get generation(): number {
    return this.bytes.readUInt32LE(I_GENERATION);
  }

  /** i_size_lo + i_size_high (regular files and, with largedir, directories). */
  get size(): number {
    return this.bytes.readUInt32LE(I_SIZE_LO) + this.bytes.readUInt32LE(I_SIZE_HIGH) * 2 ** 32;
  }

  /** i_blocks_lo only, as ext2fs_inode_has_valid_blocks2 reads it. */
  get blocksLo(): number {
    return this.bytes.readUInt32LE(I_BLOCKS_LO);
  }

  /** Storage charged to the inode, in 512-byte units (or fs blocks with HUGE_FILE). */
  get blocks(): number {
    const lo = this.blocksLo;
    const hi = this.bytes.length >= 128 ? this.bytes.readUInt16LE(I_BLOCKS_HIGH) : 0;
    return lo + hi * 2 ** 32;
  }

  get hugeFile(): boolean {
    return (this.flags & EXT4_HUGE_FILE_FL) !== 0;
  }

  /** ext2fs_file_acl_block: the xattr block, with the high half only under 64bit. */
  get fileAcl(): number {
    const lo = this.bytes.readUInt32LE(I_FILE_ACL_LO);
    return this.#is64bit ? lo + this.bytes.readUInt16LE(I_FILE_ACL_HIGH) * 2 ** 32 : lo;
  }

  /** The Hurd translator block (osd1), meaningful only when s_creator_os is Hurd. */
  get translator(): number {
    return this.bytes.readUInt32LE(I_TRANSLATOR);
  }

  get extraIsize(): number {
    return this.bytes.length > 128 ? this.bytes.readUInt16LE(I_EXTRA_ISIZE) : 0;
  }

  /** i_block (60 bytes): block map, extent root, fast symlink target or inline data. */
  get blockArea(): Buffer {
    return this.bytes.subarray(I_BLOCK, I_BLOCK + I_BLOCK_SIZE);
  }

  /** i_block[index] as a block number (block-mapped files). */
  blockPointer(index: number): number {
    return this.bytes.readUInt32LE(I_BLOCK + index * 4);
  }

  /**
   * ext2fs_inode_has_valid_blocks2: whether i_block holds block pointers or an
   * extent tree (not a fast symlink, inline data or a device number).
   */
  get hasValidBlocks(): boolean {
    return inodeHasValidBlocks(
      this.mode,
      this.flags,
      this.fileAcl,
      this.blocksLo,
      this.bytes.readUInt32LE(I_SIZE_LO),
      this.blockPointer(1),
    );
  }

  /** Indirect, double- or triple-indirect pointer set (block-mapped files). */
  get hasIndirectBlocks(): boolean {
    return (
      this.blockPointer(EXT2_IND_BLOCK) !== 0 ||
      this.blockPointer(EXT2_IND_BLOCK + 1) !== 0 ||
      this.blockPointer(EXT2_IND_BLOCK + 2) !== 0
    );
  }
}

/** The rule of ext2fs_inode_has_valid_blocks2, on raw field values (used by hot loops too). */
export function inodeHasValidBlocks(
  mode: number,
  flags: number,
  fileAcl: number,
  blocksLo: number,
  sizeLo: number,
  block1: number,
): boolean {
  const type = mode & LINUX_S_IFMT;
  if (type !== LINUX_S_IFDIR && type !== LINUX_S_IFREG && type !== LINUX_S_IFLNK) return false;
  if (type === LINUX_S_IFLNK) {
    if (fileAcl === 0) {
      // With no EA block, i_blocks tells.
      if (blocksLo === 0) return false;
    } else {
      // With an EA block i_blocks counts it too, so guess from the size.
      if (sizeLo >= 60) return true;
      if (sizeLo > 4 && block1 === 0) return true;
      return false;
    }
  }
  return (flags & EXT4_INLINE_DATA_FL) === 0;
}
