import { crc32cUpdate } from '@x/blockio';

/**
 * CRC-32C for metadata_csum lives in @x/blockio (shared with the LevelDB block
 * trailers rbd-recover reads); re-exported here so e2image's API stays as it was.
 * ext4 uses the raw form, `crc32cUpdate` (libext2fs `ext2fs_crc32c_le`: no final
 * inversion, so results chain); `crc32c` is the standard CRC-32C.
 */
export { crc32c, crc32cUpdate } from '@x/blockio';

const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

/** CRC-32C continued over a little-endian 32-bit value (inode numbers, generations). */
export function crc32cU32(crc: number, value: number): number {
  scratchView.setUint32(0, value >>> 0, true);
  return crc32cUpdate(crc, scratch, 0, 4);
}

/** CRC-32C continued over a little-endian 64-bit value (block numbers). */
export function crc32cU64(crc: number, value: number): number {
  scratchView.setUint32(0, value % 2 ** 32, true);
  scratchView.setUint32(4, Math.floor(value / 2 ** 32), true);
  return crc32cUpdate(crc, scratch, 0, 8);
}
