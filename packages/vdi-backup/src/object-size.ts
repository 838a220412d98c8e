import { isPowerOfTwo } from '@x/blockio';
import { VdiBackupError } from './errors.js';
import { SECTOR_SIZE } from './format/stream-format.js';

/** 4 MiB: `SD_DATA_OBJ_SIZE`, block_size_shift 22, dog's object size before v1.0. */
export const DEFAULT_OBJECT_SIZE = 4 << 20;
/** Record offsets are u32: an object larger than 2 GiB could not be addressed. */
export const MAX_OBJECT_SIZE = 2 ** 31;
/** Creating and merging hold one object of each side in memory; beyond this, refuse. */
export const MAX_BUFFERED_OBJECT_SIZE = 2 ** 28;

/** Throws BAD_OBJECT_SIZE unless `size` is a power of two from 512 B to `max`. */
export function checkObjectSize(size: number, max = MAX_OBJECT_SIZE): number {
  if (!isPowerOfTwo(size) || size < SECTOR_SIZE || size > max) {
    throw new VdiBackupError(
      'BAD_OBJECT_SIZE',
      `the object size must be a power of two from 512 bytes to ${max} bytes, not ${size}`,
    );
  }
  return size;
}

/** Objects needed to cover `size` bytes (the last one may be partial). */
export function objectCount(size: number, objectSize: number): number {
  return Math.ceil(size / objectSize);
}
