import { isZeroRange } from '@x/blockio';
import { SECTOR } from './convert-chunks.js';

/** A run of sectors at the start of a buffer and whether it must be written. */
export interface SectorRun {
  allocated: boolean;
  sectors: number;
}

function sectorIsZero(buffer: Uint8Array, index: number): boolean {
  return isZeroRange(buffer, index * SECTOR, (index + 1) * SECTOR);
}

/**
 * qemu-img's is_allocated_sectors(): the run of sectors from `first` (of
 * `count`) that are all zero or all non-zero. When the run ends inside an
 * `alignment` block (counted from device sector `sector`), a data run is
 * stretched to the block's end and a zero run is shortened to its start, or
 * counted as data if it lies within the block — so writes end aligned.
 */
function sameSectors(
  buffer: Uint8Array,
  first: number,
  count: number,
  sector: number,
  alignment: number,
): SectorRun {
  if (count <= 0) return { allocated: false, sectors: 0 };
  let isZero = sectorIsZero(buffer, first);
  let i = 1;
  while (i < count && sectorIsZero(buffer, first + i) === isZero) i++;
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
 * qemu-img's is_allocated_sectors_min(): like sameSectors, but once the
 * buffer starts with data, zero runs shorter than `min` sectors are written
 * along with the data around them instead of splitting the write.
 */
export function allocatedSectorsMin(
  buffer: Uint8Array,
  first: number,
  count: number,
  min: number,
  sector: number,
  alignment: number,
): SectorRun {
  const minimum = Math.min(min, count);
  const head = sameSectors(buffer, first, count, sector, alignment);
  if (!head.allocated) return head;
  let used = head.sectors;
  let checked = used;
  while (checked < count) {
    const run = sameSectors(buffer, first + checked, count - checked, sector + checked, alignment);
    checked += run.sectors;
    if (run.allocated) used = checked;
    else if (run.sectors >= minimum) break;
  }
  return { allocated: true, sectors: used };
}
