import { defineStruct, u16le, u32le } from '@x/blockio';

/**
 * Extent tree nodes (ext3_extents.h; kernel "Extent Tree"). A node is a 12-byte
 * header followed by eh_max 12-byte entries: index entries when eh_depth > 0,
 * leaf extents when eh_depth == 0. The root lives in i_block (4 entries); other
 * nodes fill a block and end with a 4-byte checksum tail under metadata_csum.
 */
export const extentHeaderStruct = defineStruct('extent header', 12, [
  { name: 'eh_magic', offset: 0, type: u16le, doc: 'EXT3_EXT_MAGIC 0xF30A' },
  { name: 'eh_entries', offset: 2, type: u16le },
  { name: 'eh_max', offset: 4, type: u16le },
  { name: 'eh_depth', offset: 6, type: u16le, doc: '0 = leaf' },
  { name: 'eh_generation', offset: 8, type: u32le },
] as const);

export const extentIndexStruct = defineStruct('extent index', 12, [
  { name: 'ei_block', offset: 0, type: u32le, doc: 'first logical block covered' },
  { name: 'ei_leaf_lo', offset: 4, type: u32le, doc: 'child node block' },
  { name: 'ei_leaf_hi', offset: 8, type: u16le },
  { name: 'ei_unused', offset: 10, type: u16le },
] as const);

export const extentLeafStruct = defineStruct('extent', 12, [
  { name: 'ee_block', offset: 0, type: u32le, doc: 'first logical block' },
  { name: 'ee_len', offset: 4, type: u16le, doc: '> 32768: unwritten, length - 32768' },
  { name: 'ee_start_hi', offset: 6, type: u16le },
  { name: 'ee_start_lo', offset: 8, type: u32le },
] as const);

export const EXTENT_ENTRY_SIZE = 12;
export const EXTENT_HEADER_SIZE = 12;
/** struct ext3_extent_tail: the crc32c after eh_max entries. */
export const EXTENT_TAIL_SIZE = 4;

// Hot-path offsets.
export const EH_MAGIC = extentHeaderStruct.offsetOf('eh_magic');
export const EH_ENTRIES = extentHeaderStruct.offsetOf('eh_entries');
export const EH_MAX = extentHeaderStruct.offsetOf('eh_max');
export const EH_DEPTH = extentHeaderStruct.offsetOf('eh_depth');
export const EI_BLOCK = extentIndexStruct.offsetOf('ei_block');
export const EI_LEAF_LO = extentIndexStruct.offsetOf('ei_leaf_lo');
export const EI_LEAF_HI = extentIndexStruct.offsetOf('ei_leaf_hi');
export const EE_BLOCK = extentLeafStruct.offsetOf('ee_block');
export const EE_LEN = extentLeafStruct.offsetOf('ee_len');
export const EE_START_HI = extentLeafStruct.offsetOf('ee_start_hi');
export const EE_START_LO = extentLeafStruct.offsetOf('ee_start_lo');
