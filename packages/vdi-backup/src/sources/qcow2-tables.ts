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
  tables: TablePairs = tablePairs(from, to),
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
    const [a, b] = await tables(l1Index);
    if (a === undefined || b === undefined) return false;
    const first = Math.floor((position % l2Coverage) / clusterSize);
    const last = Math.floor((sliceEnd - 1 - l1Index * l2Coverage) / clusterSize);
    for (let index = first; index <= last; index++) {
      const at = index * l2EntrySize;
      const hi = a.readUInt32BE(at);
      const lo = a.readUInt32BE(at + 4);
      if (lo !== b.readUInt32BE(at + 4)) return false;
      if (((hi ^ b.readUInt32BE(at)) & ~HI_COPIED) !== 0) return false;
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

/** The two views' L2 tables for an L1 index (undefined: no table), as `tablePairs` memoizes them. */
export type TablePairs = (
  l1Index: number,
) => Promise<readonly [Buffer | undefined, Buffer | undefined]>;

/** Table pairs last asked for (objects are looked at in order, a few at a time). */
const REMEMBERED_PAIRS = 4;

/**
 * The two views' L2 tables per L1 index, the last few remembered: an L2 table covers
 * many objects (512 MiB of 64 KiB clusters), and asking both images' caches for it
 * for every object cost a tenth of a snapshot backup's start-up. Views are read-only,
 * so a table once read never changes.
 */
export function tablePairs(from: Qcow2Image, to: Qcow2Image): TablePairs {
  const remembered = new Map<number, ReturnType<TablePairs>>();
  return (l1Index) => {
    let pair = remembered.get(l1Index);
    if (pair === undefined) {
      pair = Promise.all([from.l2TableFor(l1Index), to.l2TableFor(l1Index)]).then(
        ([a, b]) => [a?.table, b?.table] as const,
      );
      remembered.set(l1Index, pair);
      if (remembered.size > REMEMBERED_PAIRS) {
        remembered.delete(remembered.keys().next().value as number);
      }
    }
    return pair;
  };
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
