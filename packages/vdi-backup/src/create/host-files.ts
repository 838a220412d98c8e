import type { FileDevice } from '@x/blockio';
import type { Span } from './ranges.js';

/**
 * A range of the disks and where each side keeps it: `from` and `to` are offsets in
 * the HostFiles' files, or -1 where that side reads as zeros (unallocated or zero
 * clusters, past the end of a smaller "from").
 */
export interface LocatedSpan {
  offset: number;
  length: number;
  from: number;
  to: number;
}

/**
 * Two disks whose data lives in two files at known places (QCOW2 views: the image
 * file, at each cluster's host offset): create compares such ranges on worker threads
 * that pread the files directly, as it does for two raw images, instead of reading
 * the disks through their devices on this thread.
 */
export interface HostFiles {
  /** The file "from"'s data is in. Read by the workers through its descriptor. */
  from: FileDevice;
  /** The file "to"'s data is in (may be the same file as `from`, opened again). */
  to: FileDevice;
  /**
   * Where the disk spans `spans` (sorted, disjoint, sector-aligned, inside one object)
   * are in the files, in disk order and covering the spans exactly; `fromZero` and
   * `toZero` are the spans where each side reads as zeros (from its extents).
   * Undefined when some of it is kept otherwise (compressed clusters, a backing file,
   * an external data file): that object is then read through the devices.
   */
  locate(
    spans: readonly Span[],
    fromZero: readonly Span[],
    toZero: readonly Span[],
  ): Promise<LocatedSpan[] | undefined>;
}
