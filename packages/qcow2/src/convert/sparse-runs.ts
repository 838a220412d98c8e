import { isZeroRange } from '@x/blockio';
import { SECTOR } from './convert-chunks.js';

/** A run of sectors at the start of a buffer and whether it must be written. */
export interface SectorRun {
  allocated: boolean;
  sectors: number;
}

/**
 * Which sectors of `buffer` (the first `count`) are all zero, one byte each
 * (1 = zero). Data sectors nearly always have a non-zero first or last byte,
 * so most sectors cost two byte reads; only candidates are compared in full.
 */
export function zeroSectors(buffer: Uint8Array, count: number, into?: Uint8Array): Uint8Array {
  const flags = into && into.byteLength >= count ? into : new Uint8Array(count);
  for (let index = 0; index < count; index++) {
    const start = index * SECTOR;
    const end = start + SECTOR;
    flags[index] =
      buffer[start] === 0 && buffer[end - 1] === 0 && isZeroRange(buffer, start, end) ? 1 : 0;
  }
  return flags;
}

/**
 * qemu-img's is_allocated_sectors(): the run of sectors from `first` (of
 * `count`) that are all zero or all non-zero. When the run ends inside an
 * `alignment` block (counted from device sector `sector`), a data run is
 * stretched to the block's end and a zero run is shortened to its start, or
 * counted as data if it lies within the block — so writes end aligned.
 */
function sameSectors(
  zero: Uint8Array,
  first: number,
  count: number,
  sector: number,
  alignment: number,
): SectorRun {
  if (count <= 0) return { allocated: false, sectors: 0 };
  const kind = zero[first];
  let i = 1;
  while (i < count && zero[first + i] === kind) i++;
  let isZero = kind === 1;
  if (i === count) return { allocated: !isZero, sectors: i };
  const tail = (sector + i) & (alignment - 1);
  if (tail) {
    if (isZero && i <= tail) isZero = false;
    if (!isZero) i = Math.min(i + alignment - tail, count);
    else i -= tail;
  }
  return { allocated: !isZero, sectors: i };
}

/**
 * qemu-img's is_allocated_sectors_min() over the zero flags of a buffer
 * (zeroSectors): like sameSectors, but once the run starts with data, zero
 * runs shorter than `min` sectors are written along with the data around
 * them instead of splitting the write.
 */
export function allocatedSectorsMin(
  zero: Uint8Array,
  first: number,
  count: number,
  min: number,
  sector: number,
  alignment: number,
): SectorRun {
  const minimum = Math.min(min, count);
  const head = sameSectors(zero, first, count, sector, alignment);
  if (!head.allocated) return head;
  let used = head.sectors;
  let checked = used;
  while (checked < count) {
    const run = sameSectors(zero, first + checked, count - checked, sector + checked, alignment);
    checked += run.sectors;
    if (run.allocated) used = checked;
    else if (run.sectors >= minimum) break;
  }
  return { allocated: true, sectors: used };
}
