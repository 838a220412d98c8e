import { crc16Update } from './crc16.js';
import { crc32cU32, crc32cU64, crc32cUpdate } from './crc32c.js';
import { BG_CHECKSUM_OFFSET } from './format/group-descriptor.js';
import {
  EXT4_INODE_CSUM_HI_EXTRA_END,
  I_CHECKSUM_HI,
  I_CHECKSUM_LO,
  I_EXTRA_ISIZE,
  I_GENERATION,
} from './format/inode.js';
import { SUPERBLOCK_CHECKSUM_OFFSET } from './format/superblock.js';
import { XATTR_H_CHECKSUM } from './format/xattr.js';

/**
 * The metadata checksums libext2fs computes (lib/ext2fs/csum.c), as pure
 * functions over on-disk bytes. `seed` is fs->csum_seed: s_checksum_seed with
 * the csum_seed feature, else crc32c_le(~0, s_uuid).
 */

const TWO_ZEROES = new Uint8Array(2);
const FOUR_ZEROES = new Uint8Array(4);

export function checksumSeed(uuid: Uint8Array): number {
  return crc32cUpdate(0xffffffff, uuid);
}

/** s_checksum: crc32c_le(~0) over the superblock up to the checksum field. */
export function superblockChecksum(superblock: Uint8Array): number {
  return crc32cUpdate(0xffffffff, superblock, 0, SUPERBLOCK_CHECKSUM_OFFSET);
}

/**
 * bg_checksum for one descriptor (`descriptor` holds exactly EXT2_DESC_SIZE bytes).
 * metadata_csum: low 16 bits of crc32c(seed, group, desc with checksum zeroed);
 * gdt_csum: crc16(~0, uuid, group, desc around the checksum field).
 */
export function groupDescriptorChecksum(
  metadataCsum: boolean,
  seed: number,
  uuid: Uint8Array,
  group: number,
  descriptor: Uint8Array,
): number {
  if (metadataCsum) {
    let crc = crc32cU32(seed, group);
    crc = crc32cUpdate(crc, descriptor, 0, BG_CHECKSUM_OFFSET);
    crc = crc32cUpdate(crc, TWO_ZEROES);
    crc = crc32cUpdate(crc, descriptor, BG_CHECKSUM_OFFSET + 2, descriptor.length);
    return crc & 0xffff;
  }
  const groupBytes = new Uint8Array(4);
  new DataView(groupBytes.buffer).setUint32(0, group, true);
  let crc = crc16Update(0xffff, uuid);
  crc = crc16Update(crc, groupBytes);
  crc = crc16Update(crc, descriptor, 0, BG_CHECKSUM_OFFSET);
  if (descriptor.length > BG_CHECKSUM_OFFSET + 2) {
    crc = crc16Update(crc, descriptor, BG_CHECKSUM_OFFSET + 2, descriptor.length);
  }
  return crc;
}

export interface ChecksumResult {
  readonly stored: number;
  readonly computed: number;
  readonly ok: boolean;
}

/** ext2fs_inode_csum_verify, including its "an all-zero inode is fine" rule. */
export function verifyInodeChecksum(
  seed: number,
  ino: number,
  inode: Uint8Array,
  inodeSize: number,
): ChecksumResult {
  const view = Buffer.from(inode.buffer, inode.byteOffset, inodeSize);
  const hasHi = inodeSize > 128 && view.readUInt16LE(I_EXTRA_ISIZE) >= EXT4_INODE_CSUM_HI_EXTRA_END;
  let crc = crc32cU32(seed, ino);
  crc = crc32cUpdate(crc, view, I_GENERATION, I_GENERATION + 4);
  crc = crc32cUpdate(crc, view, 0, I_CHECKSUM_LO);
  crc = crc32cUpdate(crc, TWO_ZEROES);
  if (inodeSize > I_CHECKSUM_LO + 2) {
    if (hasHi) {
      crc = crc32cUpdate(crc, view, I_CHECKSUM_LO + 2, I_CHECKSUM_HI);
      crc = crc32cUpdate(crc, TWO_ZEROES);
      crc = crc32cUpdate(crc, view, I_CHECKSUM_HI + 2, inodeSize);
    } else {
      crc = crc32cUpdate(crc, view, I_CHECKSUM_LO + 2, inodeSize);
    }
  }
  let stored = view.readUInt16LE(I_CHECKSUM_LO);
  let computed = crc >>> 0;
  if (hasHi) stored = (stored | (view.readUInt16LE(I_CHECKSUM_HI) << 16)) >>> 0;
  else computed &= 0xffff;
  let ok = stored === computed;
  if (!ok) ok = isAllZero(view, 0, 128);
  return { stored, computed, ok };
}

function isAllZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Extent node tail: crc32c(seed, ino, generation, header + eh_max entries). */
export function verifyExtentBlockChecksum(
  seed: number,
  ino: number,
  generation: number,
  node: Uint8Array,
  tailOffset: number,
): ChecksumResult {
  let crc = crc32cU32(seed, ino);
  crc = crc32cU32(crc, generation);
  crc = crc32cUpdate(crc, node, 0, tailOffset);
  const stored = new DataView(node.buffer, node.byteOffset).getUint32(tailOffset, true);
  return { stored, computed: crc, ok: stored === crc };
}

/** Directory leaf block tail (struct ext2_dir_entry_tail at blockSize - 12). */
export function verifyDirectoryBlockChecksum(
  seed: number,
  ino: number,
  generation: number,
  block: Uint8Array,
): ChecksumResult {
  const tail = block.length - 12;
  let crc = crc32cU32(seed, ino);
  crc = crc32cU32(crc, generation);
  crc = crc32cUpdate(crc, block, 0, tail);
  const stored = new DataView(block.buffer, block.byteOffset).getUint32(tail + 8, true);
  return { stored, computed: crc, ok: stored === crc };
}

/** Block or inode bitmap checksum as kept in the group descriptor (16 or 32 bits). */
export function verifyBitmapChecksum(
  seed: number,
  bitmap: Uint8Array,
  length: number,
  stored: number,
  fullWidth: boolean,
): ChecksumResult {
  let computed = crc32cUpdate(seed, bitmap, 0, length);
  if (!fullWidth) computed &= 0xffff;
  return { stored, computed, ok: stored === computed };
}

export function bitmapChecksum(seed: number, bitmap: Uint8Array, length: number): number {
  return crc32cUpdate(seed, bitmap, 0, length);
}

/** External xattr block: crc32c(seed, block number as le64, block with h_checksum zeroed). */
export function verifyXattrBlockChecksum(
  seed: number,
  blockNumber: number,
  block: Uint8Array,
): ChecksumResult {
  let crc = crc32cU64(seed, blockNumber);
  crc = crc32cUpdate(crc, block, 0, XATTR_H_CHECKSUM);
  crc = crc32cUpdate(crc, FOUR_ZEROES);
  crc = crc32cUpdate(crc, block, XATTR_H_CHECKSUM + 4, block.length);
  const stored = new DataView(block.buffer, block.byteOffset).getUint32(XATTR_H_CHECKSUM, true);
  return { stored, computed: crc, ok: stored === crc };
}
