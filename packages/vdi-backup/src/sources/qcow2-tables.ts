import type { Qcow2Image } from '@x/qcow2/read';

// L2 entry bits (qcow2.txt, "Cluster mapping"), as @x/qcow2's format/constants.ts
// names them; repeated here so this file needs only the read entry of @x/qcow2.
/** Bit 63 (of the high word): refcount is 1. Differs between views of one cluster. */
const HI_COPIED = 0x80000000;
/** Bit 62: a compressed cluster. */
const HI_COMPRESSED = 0x40000000;
/** Bits 32-55 of a standard cluster's host offset. */
const HI_OFFSET_MASK = 0x00ffffff;
/** Bits 9-31 of a standard cluster's host offset. */
const LO_OFFSET_MASK = 0xfffffe00;
/** Bit 0: the cluster reads as zeros. */
const LO_ZERO = 1;
/** Bits 56-61 and 1-8: reserved, 0 in a valid standard entry (the generic path names them). */
const HI_RESERVED = 0x3f000000;
const LO_RESERVED = 0x000001fe;

/**
 * Whether every cluster of guest range [offset, end) is data that both views of one
 * QCOW2 file store in the same host cluster: the two L2 entries are equal but for
 * the COPIED flag (a cluster shared by a snapshot has refcount 2 and loses it) and
 * each is a standard cluster with a host offset, no zero flag, inside the file.
 * Compares the L2 tables' entries directly, table by table, without building
 * mappings. False means "not known so": the caller asks the generic way (which also
 * reports anything wrong with the entries), so this answers false for whatever it
 * does not handle — extended L2 entries, external data files, salvaging reads,
 * compressed clusters, zero or unallocated clusters, ranges past either view's end.
 */
export async function wholeRangeShared(
  from: Qcow2Image,
  to: Qcow2Image,
  offset: number,
  end: number,
): Promise<boolean> {
  const geometry = from.geometry;
  if (!comparableViews(from, to) || end > from.size || end > to.size || end <= offset) {
    return false;
  }
  const { clusterSize, l2Coverage, l2EntrySize } = geometry;
  const fileSize = Math.min(from.file.size, to.file.size);
  let position = offset;
  while (position < end) {
    const l1Index = Math.floor(position / l2Coverage);
    const sliceEnd = Math.min(end, (l1Index + 1) * l2Coverage);
    const [a, b] = await Promise.all([from.l2TableFor(l1Index), to.l2TableFor(l1Index)]);
    if (a === undefined || b === undefined) return false;
    const first = Math.floor((position % l2Coverage) / clusterSize);
    const last = Math.floor((sliceEnd - 1 - l1Index * l2Coverage) / clusterSize);
    for (let index = first; index <= last; index++) {
      const at = index * l2EntrySize;
      const hi = a.table.readUInt32BE(at);
      const lo = a.table.readUInt32BE(at + 4);
      if (lo !== b.table.readUInt32BE(at + 4)) return false;
      if (((hi ^ b.table.readUInt32BE(at)) & ~HI_COPIED) !== 0) return false;
      if ((hi & (HI_COMPRESSED | HI_RESERVED)) !== 0 || (lo & (LO_ZERO | LO_RESERVED)) !== 0) {
        return false;
      }
      const host = (hi & HI_OFFSET_MASK) * 2 ** 32 + ((lo & LO_OFFSET_MASK) >>> 0);
      if (host === 0 || host % clusterSize !== 0 || host + clusterSize > fileSize) return false;
    }
    position = sliceEnd;
  }
  return true;
}

/** Two views whose standard L2 entries say all there is about where a cluster lives. */
function comparableViews(from: Qcow2Image, to: Qcow2Image): boolean {
  return (
    from.file.name === to.file.name &&
    from.geometry.clusterSize === to.geometry.clusterSize &&
    !from.geometry.extendedL2 &&
    !to.geometry.extendedL2 &&
    !from.ownsDataFile &&
    !to.ownsDataFile &&
    from.salvage === undefined &&
    to.salvage === undefined
  );
}
