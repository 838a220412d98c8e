import { bytes, defineStruct, type StructValue, u16le, u32le } from '@x/blockio';

/**
 * `struct ext2_inode_large` (ext2_fs.h; kernel "Inode Table"). The first 128 bytes
 * are the classic inode; i_extra_isize says how much of the rest is in use.
 * Fields are named for Linux (osd1/osd2 as the linux1/linux2 unions).
 */
export const inodeStruct = defineStruct('inode', 160, [
  { name: 'i_mode', offset: 0x00, type: u16le },
  { name: 'i_uid', offset: 0x02, type: u16le },
  { name: 'i_size_lo', offset: 0x04, type: u32le },
  { name: 'i_atime', offset: 0x08, type: u32le },
  { name: 'i_ctime', offset: 0x0c, type: u32le },
  { name: 'i_mtime', offset: 0x10, type: u32le },
  { name: 'i_dtime', offset: 0x14, type: u32le },
  { name: 'i_gid', offset: 0x18, type: u16le },
  { name: 'i_links_count', offset: 0x1a, type: u16le },
  { name: 'i_blocks_lo', offset: 0x1c, type: u32le, doc: '512-byte units unless HUGE_FILE' },
  { name: 'i_flags', offset: 0x20, type: u32le },
  { name: 'l_i_version', offset: 0x24, type: u32le, doc: 'osd1; h_i_translator on Hurd' },
  { name: 'i_block', offset: 0x28, type: bytes(60), doc: 'block map, extent root or inline data' },
  { name: 'i_generation', offset: 0x64, type: u32le },
  { name: 'i_file_acl_lo', offset: 0x68, type: u32le, doc: 'xattr block' },
  { name: 'i_size_high', offset: 0x6c, type: u32le },
  { name: 'i_obso_faddr', offset: 0x70, type: u32le },
  { name: 'l_i_blocks_high', offset: 0x74, type: u16le },
  { name: 'l_i_file_acl_high', offset: 0x76, type: u16le },
  { name: 'l_i_uid_high', offset: 0x78, type: u16le },
  { name: 'l_i_gid_high', offset: 0x7a, type: u16le },
  { name: 'l_i_checksum_lo', offset: 0x7c, type: u16le },
  { name: 'l_i_reserved', offset: 0x7e, type: u16le },
  { name: 'i_extra_isize', offset: 0x80, type: u16le },
  { name: 'i_checksum_hi', offset: 0x82, type: u16le },
  { name: 'i_ctime_extra', offset: 0x84, type: u32le },
  { name: 'i_mtime_extra', offset: 0x88, type: u32le },
  { name: 'i_atime_extra', offset: 0x8c, type: u32le },
  { name: 'i_crtime', offset: 0x90, type: u32le },
  { name: 'i_crtime_extra', offset: 0x94, type: u32le },
  { name: 'i_version_hi', offset: 0x98, type: u32le },
  { name: 'i_projid', offset: 0x9c, type: u32le },
] as const);

export type RawInode = StructValue<typeof inodeStruct.fields>;

// Offsets the hot paths read directly (from the table, so there is one source of truth).
export const I_MODE = inodeStruct.offsetOf('i_mode');
export const I_SIZE_LO = inodeStruct.offsetOf('i_size_lo');
export const I_LINKS_COUNT = inodeStruct.offsetOf('i_links_count');
export const I_BLOCKS_LO = inodeStruct.offsetOf('i_blocks_lo');
export const I_FLAGS = inodeStruct.offsetOf('i_flags');
export const I_TRANSLATOR = inodeStruct.offsetOf('l_i_version');
export const I_BLOCK = inodeStruct.offsetOf('i_block');
export const I_GENERATION = inodeStruct.offsetOf('i_generation');
export const I_FILE_ACL_LO = inodeStruct.offsetOf('i_file_acl_lo');
export const I_SIZE_HIGH = inodeStruct.offsetOf('i_size_high');
export const I_BLOCKS_HIGH = inodeStruct.offsetOf('l_i_blocks_high');
export const I_FILE_ACL_HIGH = inodeStruct.offsetOf('l_i_file_acl_high');
export const I_CHECKSUM_LO = inodeStruct.offsetOf('l_i_checksum_lo');
export const I_EXTRA_ISIZE = inodeStruct.offsetOf('i_extra_isize');
export const I_CHECKSUM_HI = inodeStruct.offsetOf('i_checksum_hi');
/** i_checksum_hi is present when i_extra_isize reaches past it (EXT4_INODE_CSUM_HI_EXTRA_END). */
export const EXT4_INODE_CSUM_HI_EXTRA_END = I_CHECKSUM_HI + 2 - 128;
/** Size of i_block in bytes (EXT2_N_BLOCKS * 4). */
export const I_BLOCK_SIZE = 60;
