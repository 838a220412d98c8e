import { HI_COMPRESSED, HI_COPIED, LO_ZERO } from '../format/constants.js';
import { entryOffset } from '../format/table-entries.js';

/** An L2 entry as two 32-bit halves, plus the extended-L2 bitmap words (0 otherwise). */
export interface L2EntryWords {
  hi: number;
  lo: number;
  /** Bits 32–63 of the bitmap: subcluster reads as zero. */
  zero: number;
  /** Bits 0–31 of the bitmap: subcluster allocated. */
  alloc: number;
}

export type ClusterKind = 'unallocated' | 'zero-plain' | 'zero-alloc' | 'normal' | 'compressed';

export type SubclusterKind =
  | 'normal'
  | 'zero-alloc'
  | 'zero-plain'
  | 'unallocated-alloc'
  | 'unallocated-plain'
  | 'compressed'
  | 'invalid';

const TWO_32 = 0x1_0000_0000;

export function readL2Entry(table: Buffer, index: number, extended: boolean): L2EntryWords {
  const at = index * (extended ? 16 : 8);
  return {
    hi: table.readUInt32BE(at),
    lo: table.readUInt32BE(at + 4),
    zero: extended ? table.readUInt32BE(at + 8) : 0,
    alloc: extended ? table.readUInt32BE(at + 12) : 0,
  };
}

/** Writes the descriptor word of entry `index` (and the bitmap, for extended L2). */
export function writeL2Entry(
  table: Buffer,
  index: number,
  extended: boolean,
  entry: { hi: number; lo: number; zero?: number; alloc?: number },
): void {
  const at = index * (extended ? 16 : 8);
  table.writeUInt32BE(entry.hi >>> 0, at);
  table.writeUInt32BE(entry.lo >>> 0, at + 4);
  if (extended && entry.zero !== undefined && entry.alloc !== undefined) {
    table.writeUInt32BE(entry.zero >>> 0, at + 8);
    table.writeUInt32BE(entry.alloc >>> 0, at + 12);
  }
}

/** Halves of a standard entry pointing at `hostOffset`, optionally COPIED and/or zero. */
export function standardEntry(
  hostOffset: number,
  flags: { copied?: boolean; zero?: boolean } = {},
): { hi: number; lo: number } {
  const hi = Math.floor(hostOffset / TWO_32) | (flags.copied ? HI_COPIED : 0);
  const lo = (hostOffset % TWO_32) | (flags.zero ? LO_ZERO : 0);
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

export function entryIsZero(entry: { hi: number; lo: number }): boolean {
  return entry.hi === 0 && entry.lo === 0;
}

/** QEMU's qcow2_get_cluster_type(). */
export function clusterKind(
  entry: { hi: number; lo: number },
  extended: boolean,
  hasDataFile: boolean,
): ClusterKind {
  if ((entry.hi & HI_COMPRESSED) !== 0) return 'compressed';
  const offset = entryOffset(entry.hi, entry.lo);
  if ((entry.lo & LO_ZERO) !== 0 && !extended) return offset === 0 ? 'zero-plain' : 'zero-alloc';
  if (offset === 0) {
    // Offset 0 is a real offset in an external data file; COPIED tells them apart.
    return hasDataFile && (entry.hi & HI_COPIED) !== 0 ? 'normal' : 'unallocated';
  }
  return 'normal';
}

/** QEMU's qcow2_get_subcluster_type(). */
export function subclusterKind(
  entry: L2EntryWords,
  subcluster: number,
  extended: boolean,
  hasDataFile: boolean,
): SubclusterKind {
  const kind = clusterKind(entry, extended, hasDataFile);
  if (!extended) {
    if (kind === 'unallocated') return 'unallocated-plain';
    return kind;
  }
  const bit = (1 << subcluster) >>> 0;
  switch (kind) {
    case 'compressed':
      return 'compressed';
    case 'normal':
      if ((entry.zero & entry.alloc) >>> 0 !== 0) return 'invalid';
      if ((entry.zero & bit) !== 0) return 'zero-alloc';
      if ((entry.alloc & bit) !== 0) return 'normal';
      return 'unallocated-alloc';
    default:
      if (entry.alloc !== 0) return 'invalid';
      return (entry.zero & bit) !== 0 ? 'zero-plain' : 'unallocated-plain';
  }
}

/** How many subclusters from `from` on share the kind of subcluster `from`. */
export function subclusterRunLength(
  entry: L2EntryWords,
  from: number,
  subclusters: number,
  extended: boolean,
  hasDataFile: boolean,
): { kind: SubclusterKind; count: number } {
  const kind = subclusterKind(entry, from, extended, hasDataFile);
  if (!extended) return { kind, count: 1 };
  let count = 1;
  while (
    from + count < subclusters &&
    subclusterKind(entry, from + count, extended, hasDataFile) === kind
  ) {
    count++;
  }
  return { kind, count };
}

/** Cluster is allocated in this image (normal, zero-alloc or compressed). */
export function isAllocatedKind(kind: ClusterKind): boolean {
  return kind === 'normal' || kind === 'zero-alloc' || kind === 'compressed';
}

/** Trailing zero count of a 32-bit value (32 for 0). */
export function ctz32(value: number): number {
  const v = value >>> 0;
  return v === 0 ? 32 : 31 - Math.clz32((v & -v) >>> 0);
}

/** Bits [from, to) of a 32-bit word. */
export function bitRange(from: number, to: number): number {
  if (to <= from) return 0;
  const width = to - from;
  return width >= 32 ? 0xffffffff : ((((1 << width) >>> 0) - 1) << from) >>> 0;
}
