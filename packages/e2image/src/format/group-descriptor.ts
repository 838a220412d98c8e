import { defineStruct, type StructValue, u16le, u32le } from '@x/blockio';

/**
 * `struct ext4_group_desc` (ext2_fs.h; kernel "Block Group Descriptors"). The first
 * 32 bytes are the whole descriptor unless the 64bit feature is on, when
 * s_desc_size (>= 64) bytes are used and the _hi halves count.
 */
export const groupDescriptor32Struct = defineStruct('group descriptor', 32, [
  { name: 'bg_block_bitmap_lo', offset: 0x00, type: u32le },
  { name: 'bg_inode_bitmap_lo', offset: 0x04, type: u32le },
  { name: 'bg_inode_table_lo', offset: 0x08, type: u32le },
  { name: 'bg_free_blocks_count_lo', offset: 0x0c, type: u16le },
  { name: 'bg_free_inodes_count_lo', offset: 0x0e, type: u16le },
  { name: 'bg_used_dirs_count_lo', offset: 0x10, type: u16le },
  {
    name: 'bg_flags',
    offset: 0x12,
    type: u16le,
    doc: 'EXT2_BG_INODE_UNINIT | BLOCK_UNINIT | INODE_ZEROED',
  },
  { name: 'bg_exclude_bitmap_lo', offset: 0x14, type: u32le },
  { name: 'bg_block_bitmap_csum_lo', offset: 0x18, type: u16le },
  { name: 'bg_inode_bitmap_csum_lo', offset: 0x1a, type: u16le },
  { name: 'bg_itable_unused_lo', offset: 0x1c, type: u16le },
  { name: 'bg_checksum', offset: 0x1e, type: u16le, doc: 'crc16 (gdt_csum) or crc32c & 0xffff' },
] as const);

export const groupDescriptor64Struct = defineStruct('group descriptor (64bit)', 64, [
  ...groupDescriptor32Struct.fields,
  { name: 'bg_block_bitmap_hi', offset: 0x20, type: u32le },
  { name: 'bg_inode_bitmap_hi', offset: 0x24, type: u32le },
  { name: 'bg_inode_table_hi', offset: 0x28, type: u32le },
  { name: 'bg_free_blocks_count_hi', offset: 0x2c, type: u16le },
  { name: 'bg_free_inodes_count_hi', offset: 0x2e, type: u16le },
  { name: 'bg_used_dirs_count_hi', offset: 0x30, type: u16le },
  { name: 'bg_itable_unused_hi', offset: 0x32, type: u16le },
  { name: 'bg_exclude_bitmap_hi', offset: 0x34, type: u32le },
  { name: 'bg_block_bitmap_csum_hi', offset: 0x38, type: u16le },
  { name: 'bg_inode_bitmap_csum_hi', offset: 0x3a, type: u16le },
  { name: 'bg_reserved', offset: 0x3c, type: u32le },
] as const);

export type RawGroupDescriptor64 = StructValue<typeof groupDescriptor64Struct.fields>;

/** Offset of bg_checksum: the crc16 variant covers the bytes around it. */
export const BG_CHECKSUM_OFFSET = groupDescriptor32Struct.offsetOf('bg_checksum');
/** A descriptor this long or longer carries the _hi half of the bitmap checksums. */
export const EXT4_BG_BLOCK_BITMAP_CSUM_HI_END = 0x3a;
export const EXT4_BG_INODE_BITMAP_CSUM_HI_END = 0x3c;

/** One group's descriptor with 64-bit halves already combined. */
export interface GroupDescriptor {
  readonly group: number;
  readonly blockBitmap: number;
  readonly inodeBitmap: number;
  readonly inodeTable: number;
  readonly freeBlocks: number;
  readonly freeInodes: number;
  readonly usedDirs: number;
  readonly flags: number;
  readonly itableUnused: number;
  readonly checksum: number;
  readonly blockBitmapChecksum: number;
  readonly inodeBitmapChecksum: number;
}

/**
 * Decodes descriptor `group` from the in-memory descriptor table. The _hi halves
 * count only with the 64bit feature (as ext2fs_inode_table_loc and friends do).
 */
export function decodeGroupDescriptor(
  table: Uint8Array,
  group: number,
  descSize: number,
  is64bit: boolean,
): GroupDescriptor {
  const offset = group * descSize;
  const lo = groupDescriptor32Struct.decode(table, offset);
  if (!is64bit) {
    return {
      group,
      blockBitmap: lo.bg_block_bitmap_lo,
      inodeBitmap: lo.bg_inode_bitmap_lo,
      inodeTable: lo.bg_inode_table_lo,
      freeBlocks: lo.bg_free_blocks_count_lo,
      freeInodes: lo.bg_free_inodes_count_lo,
      usedDirs: lo.bg_used_dirs_count_lo,
      flags: lo.bg_flags,
      itableUnused: lo.bg_itable_unused_lo,
      checksum: lo.bg_checksum,
      blockBitmapChecksum: lo.bg_block_bitmap_csum_lo,
      inodeBitmapChecksum: lo.bg_inode_bitmap_csum_lo,
    };
  }
  const full = groupDescriptor64Struct.decode(table, offset);
  const hiCsum = descSize >= EXT4_BG_INODE_BITMAP_CSUM_HI_END;
  return {
    group,
    blockBitmap: full.bg_block_bitmap_lo + full.bg_block_bitmap_hi * 2 ** 32,
    inodeBitmap: full.bg_inode_bitmap_lo + full.bg_inode_bitmap_hi * 2 ** 32,
    inodeTable: full.bg_inode_table_lo + full.bg_inode_table_hi * 2 ** 32,
    freeBlocks: full.bg_free_blocks_count_lo + full.bg_free_blocks_count_hi * 2 ** 16,
    freeInodes: full.bg_free_inodes_count_lo + full.bg_free_inodes_count_hi * 2 ** 16,
    usedDirs: full.bg_used_dirs_count_lo + full.bg_used_dirs_count_hi * 2 ** 16,
    flags: full.bg_flags,
    itableUnused: full.bg_itable_unused_lo + full.bg_itable_unused_hi * 2 ** 16,
    checksum: full.bg_checksum,
    blockBitmapChecksum:
      full.bg_block_bitmap_csum_lo + (hiCsum ? full.bg_block_bitmap_csum_hi * 2 ** 16 : 0),
    inodeBitmapChecksum:
      full.bg_inode_bitmap_csum_lo + (hiCsum ? full.bg_inode_bitmap_csum_hi * 2 ** 16 : 0),
  };
}
