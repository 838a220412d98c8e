import { defineStruct, u8, u16le, u32le } from '@x/blockio';

/** `struct ext2_ext_attr_header` (ext2_ext_attr.h): starts an xattr block. */
export const xattrBlockHeaderStruct = defineStruct('xattr block header', 32, [
  { name: 'h_magic', offset: 0x00, type: u32le, doc: 'EXT2_EXT_ATTR_MAGIC 0xEA020000' },
  { name: 'h_refcount', offset: 0x04, type: u32le },
  { name: 'h_blocks', offset: 0x08, type: u32le, doc: 'always 1' },
  { name: 'h_hash', offset: 0x0c, type: u32le },
  { name: 'h_checksum', offset: 0x10, type: u32le },
] as const);

/** `struct ext2_ext_attr_entry`, followed by the name; 4-byte aligned. */
export const xattrEntryStruct = defineStruct('xattr entry', 16, [
  { name: 'e_name_len', offset: 0x00, type: u8 },
  { name: 'e_name_index', offset: 0x01, type: u8 },
  { name: 'e_value_offs', offset: 0x02, type: u16le },
  { name: 'e_value_inum', offset: 0x04, type: u32le, doc: 'ea_inode: value lives in this inode' },
  { name: 'e_value_size', offset: 0x08, type: u32le },
  { name: 'e_hash', offset: 0x0c, type: u32le },
] as const);

/** In-inode xattrs start with this magic right after i_extra_isize. */
export const EXT2_EXT_ATTR_MAGIC_IN_INODE = 0xea020000;
export const XATTR_HEADER_SIZE = 32;
export const XATTR_ENTRY_SIZE = 16;
export const XATTR_H_CHECKSUM = xattrBlockHeaderStruct.offsetOf('h_checksum');

/** e_name_index prefixes (ext2_ext_attr.h / kernel xattr.h). */
export const XATTR_PREFIXES: Record<number, string> = {
  1: 'user.',
  2: 'system.posix_acl_access',
  3: 'system.posix_acl_default',
  4: 'trusted.',
  6: 'security.',
  7: 'system.',
  8: 'system.richacl',
};
