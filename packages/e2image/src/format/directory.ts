import { defineStruct, u8, u16le, u32le } from '@x/blockio';

/**
 * `struct ext2_dir_entry_2` (ext2_fs.h; kernel "Linear (Classic) Directories").
 * The name follows the 8-byte header. rec_len uses the large-block encoding
 * (ext2fs_get_rec_len): 0 or 65535 mean a whole 64 KiB block, and the low two
 * bits carry bits 16-17.
 */
export const directoryEntryStruct = defineStruct('directory entry', 8, [
  { name: 'inode', offset: 0, type: u32le },
  { name: 'rec_len', offset: 4, type: u16le },
  { name: 'name_len', offset: 6, type: u8 },
  { name: 'file_type', offset: 7, type: u8, doc: 'EXT2_FT_* when the filetype feature is on' },
] as const);

/** `struct ext2_dir_entry_tail`: the metadata_csum checksum record closing a leaf block. */
export const directoryTailStruct = defineStruct('directory tail', 12, [
  { name: 'det_reserved_zero1', offset: 0, type: u32le },
  { name: 'det_rec_len', offset: 4, type: u16le, doc: '12' },
  { name: 'det_reserved_name_len', offset: 6, type: u16le, doc: '0xDE00' },
  { name: 'det_checksum', offset: 8, type: u32le },
] as const);

/** `struct ext2_dx_root_info`, after the "." and ".." entries of an htree root block. */
export const dxRootInfoStruct = defineStruct('dx root info', 8, [
  { name: 'reserved_zero', offset: 0, type: u32le },
  { name: 'hash_version', offset: 4, type: u8 },
  { name: 'info_length', offset: 5, type: u8, doc: '8' },
  { name: 'indirect_levels', offset: 6, type: u8 },
  { name: 'unused_flags', offset: 7, type: u8 },
] as const);

/** `struct ext2_dx_countlimit`, overlaying the first dx_entry of a node. */
export const dxCountLimitStruct = defineStruct('dx count/limit', 8, [
  { name: 'limit', offset: 0, type: u16le },
  { name: 'count', offset: 2, type: u16le },
  { name: 'block', offset: 4, type: u32le, doc: 'first child (logical block)' },
] as const);

export const DIRENT_HEADER_SIZE = 8;
export const DIRENT_TAIL_SIZE = 12;
export const DX_TAIL_SIZE = 8;
