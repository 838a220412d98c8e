import { bytes, defineStruct, fixedString, type StructValue, u32le } from '@x/blockio';

/**
 * `struct ext2_image_hdr` (lib/ext2fs/e2image.h): block 0 of an e2image "normal"
 * image, zero-padded to one filesystem block. Little-endian.
 */
export const imageHeaderStruct = defineStruct('e2image header', 332, [
  { name: 'magic_number', offset: 0, type: u32le, doc: 'EXT2_ET_MAGIC_E2IMAGE' },
  { name: 'magic_descriptor', offset: 4, type: fixedString(16), doc: '"Ext2 Image 1.0"' },
  { name: 'fs_hostname', offset: 20, type: fixedString(64) },
  { name: 'fs_netaddr', offset: 84, type: bytes(32) },
  { name: 'fs_netaddr_type', offset: 116, type: u32le },
  { name: 'fs_device', offset: 120, type: u32le, doc: 'st_rdev of the source' },
  { name: 'fs_device_name', offset: 124, type: fixedString(64) },
  { name: 'fs_uuid', offset: 188, type: bytes(16) },
  { name: 'fs_blocksize', offset: 204, type: u32le },
  { name: 'fs_reserved', offset: 208, type: bytes(32) },
  { name: 'image_device', offset: 240, type: u32le, doc: 'st_dev of the image file' },
  { name: 'image_inode', offset: 244, type: u32le, doc: 'st_ino of the image file' },
  { name: 'image_time_lo', offset: 248, type: u32le },
  { name: 'image_time_hi', offset: 252, type: u32le },
  { name: 'image_reserved', offset: 256, type: bytes(28) },
  { name: 'offset_super', offset: 284, type: u32le },
  { name: 'offset_inode', offset: 288, type: u32le },
  { name: 'offset_inodemap', offset: 292, type: u32le },
  { name: 'offset_blockmap', offset: 296, type: u32le },
  { name: 'offset_reserved', offset: 300, type: bytes(32) },
] as const);

export type ImageHeader = StructValue<typeof imageHeaderStruct.fields>;
