import { type BlockDevice, deviceExtents } from '@x/blockio';
import type { Span } from './ranges.js';

/**
 * What is known about a range of the two disks without reading them. `zero`: both
 * read as zeros (unallocated or zero on both sides, or past the end of "from").
 * `shared`: both sides are the same stored bytes (a QCOW2 cluster both views map to
 * the same host cluster, a Sheepdog object both inodes point to). Spans are absolute
 * disk offsets, sorted and disjoint.
 */
export interface KnownEqual {
  zero: Span[];
  shared: Span[];
}

/**
 * A source pair's knowledge of shared storage: the ranges of [offset, offset + length)
 * both sides store in the same place, so they are equal without being read.
 *
 * `wholly`, when present, is a quicker question asked first: whether all of
 * [offset, end) is data (neither zeros nor unallocated on either side) both sides
 * store in the same place. True skips the object as shared without asking for its
 * spans or its zero ranges; false means "not known so" and the spans are asked for.
 */
export type SharedRanges = ((offset: number, length: number) => Promise<Span[]>) & {
  wholly?: ((offset: number, end: number) => Promise<boolean>) | undefined;
};

/** Spans of [start, end) where `device` reads as zeros without being read. */
export async function zeroSpans(device: BlockDevice, start: number, end: number): Promise<Span[]> {
  const out: Span[] = [];
  const inside = Math.min(end, device.size);
  if (inside > start) {
    for await (const extent of deviceExtents(device, { offset: start, length: inside - start })) {
      if (extent.kind === 'data') continue;
      const last = out.at(-1);
      if (last && last[1] === extent.offset) {
        out[out.length - 1] = [last[0], extent.offset + extent.length];
      } else {
        out.push([extent.offset, extent.offset + extent.length]);
      }
    }
  }
  // Past the end of a (smaller) disk: zeros, as dog reads an object "from" lacks.
  const tail = Math.max(start, device.size);
  if (tail < end) {
    const last = out.at(-1);
    if (last && last[1] === tail) out[out.length - 1] = [last[0], end];
    else out.push([tail, end]);
  }
  return out;
}
