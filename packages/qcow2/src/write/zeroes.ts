import { zeroBuffer } from '@x/blockio';
import { writeGuestData } from './data-write.js';
import { freeAnyCluster } from './free-cluster.js';
import {
  bitRange,
  clusterKind,
  isAllocatedKind,
  readL2Entry,
  subclusterKind,
  writeL2Entry,
} from './l2-entries.js';
import { getClusterTable, l2Table } from './l2-tables.js';
import type { DiscardType } from './table-store.js';
import type { WriterState } from './writer-state.js';

const ALL_ZEROES = 0xffffffff;
const UNSUPPORTED = Symbol('unsupported');

/**
 * Makes [offset, offset + length) read as zeros the way QEMU's write-zeroes
 * path does: whole (sub)clusters become zero clusters (v3), partial ones are
 * zeroed in place when the rest already reads as zero, and everything the
 * format cannot express is written as zero bytes. With `unmap`, allocated
 * clusters are released (QEMU's BDRV_REQ_MAY_UNMAP); without it they keep
 * their host cluster as preallocated zero clusters.
 */
export async function writeZeroesRange(
  writer: WriterState,
  offset: number,
  length: number,
  unmap: boolean,
): Promise<void> {
  // The block layer's split: an unaligned head, the aligned bulk, an unaligned tail.
  const alignment = writer.geometry.subclusterSize;
  let head = offset % alignment;
  const tail = (offset + length) % alignment;
  let position = offset;
  let remaining = length;
  while (remaining > 0) {
    let count = remaining;
    if (head !== 0) {
      count = Math.min(remaining, alignment - head);
      head = (head + count) % alignment;
    } else if (tail !== 0 && count > alignment) {
      count -= tail;
    }
    const result = await zeroRequest(writer, position, count, unmap);
    if (result === UNSUPPORTED) await writeZeroBytes(writer, position, count);
    position += count;
    remaining -= count;
  }
}

async function writeZeroBytes(writer: WriterState, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const chunk = Math.min(length - done, 1 << 20);
    await writeGuestData(writer, offset + done, zeroBuffer(chunk));
    done += chunk;
  }
}

/** QEMU's qcow2_co_pwrite_zeroes() for one request of the split. */
async function zeroRequest(
  writer: WriterState,
  offset: number,
  length: number,
  unmap: boolean,
): Promise<undefined | typeof UNSUPPORTED> {
  const subclusterSize = writer.geometry.subclusterSize;
  const size = writer.image.size;
  const head = offset % subclusterSize;
  let tail = Math.ceil((offset + length) / subclusterSize) * subclusterSize - (offset + length);
  if (offset + length === size) tail = 0;
  let start = offset;
  let bytes = length;
  if (head !== 0 || tail !== 0) {
    if (!(await writer.readsAsZero(offset - head, head))) return UNSUPPORTED;
    if (!(await writer.readsAsZero(offset + length, tail))) return UNSUPPORTED;
    start = offset - head;
    bytes = subclusterSize;
    const kind = await writer.subclusterKindAt(start);
    if (
      kind !== 'unallocated-plain' &&
      kind !== 'unallocated-alloc' &&
      kind !== 'zero-plain' &&
      kind !== 'zero-alloc'
    ) {
      return UNSUPPORTED;
    }
  }
  return zeroize(writer, start, Math.min(bytes, size - start), unmap);
}

/** QEMU's qcow2_subcluster_zeroize(). */
async function zeroize(
  writer: WriterState,
  offset: number,
  bytes: number,
  unmap: boolean,
): Promise<undefined | typeof UNSUPPORTED> {
  const { geometry } = writer;
  const clusterSize = geometry.clusterSize;
  const size = writer.image.size;
  if (writer.dataFileRaw) await writer.zeroDataFileRange(offset, bytes);
  if (writer.version < 3) {
    if (!writer.image.backing) return discardClusters(writer, offset, bytes, 'request', false);
    return UNSUPPORTED;
  }
  let end = offset + bytes;
  const head = Math.min(end, Math.ceil(offset / clusterSize) * clusterSize) - offset;
  let position = offset + head;
  const tail = end >= size ? 0 : end - Math.max(position, end - (end % clusterSize));
  end -= tail;
  writer.refcounts.cacheDiscards = true;
  try {
    if (head !== 0) {
      // QEMU's size_to_subclusters() rounds up: a head ending at the image's end is partial.
      const result = await zeroSubclusters(
        writer,
        offset,
        Math.ceil(head / geometry.subclusterSize),
      );
      if (result === UNSUPPORTED) return UNSUPPORTED;
    }
    let clusters = Math.ceil((end - position) / clusterSize);
    while (clusters > 0) {
      const cleared = await zeroInL2Table(writer, position, clusters, unmap);
      clusters -= cleared;
      position += cleared * clusterSize;
    }
    if (tail !== 0) {
      const result = await zeroSubclusters(writer, end, Math.ceil(tail / geometry.subclusterSize));
      if (result === UNSUPPORTED) return UNSUPPORTED;
    }
  } finally {
    writer.refcounts.cacheDiscards = false;
    await writer.refcounts.processDiscards(true);
  }
  return undefined;
}

/** Zero flags for whole clusters within one L2 table (QEMU's zero_in_l2_slice()). */
async function zeroInL2Table(
  writer: WriterState,
  offset: number,
  clusters: number,
  unmap: boolean,
): Promise<number> {
  const { geometry } = writer;
  const extended = geometry.extendedL2;
  const { l2Offset, index } = await getClusterTable(writer, offset);
  const count = Math.min(clusters, geometry.l2Entries - index);
  const freed: Array<{ hi: number; lo: number }> = [];
  const table = await l2Table(writer, l2Offset);
  let dirty = false;
  for (let i = 0; i < count; i++) {
    const old = readL2Entry(table, index + i, extended);
    const kind = clusterKind(old, extended, writer.hasDataFile);
    const release = kind === 'compressed' || (unmap && isAllocatedKind(kind));
    const next = release ? { hi: 0, lo: 0, zero: old.zero, alloc: old.alloc } : { ...old };
    if (extended) {
      next.zero = ALL_ZEROES;
      next.alloc = 0;
    } else {
      next.lo = (next.lo | 1) >>> 0;
    }
    if (
      next.hi === old.hi &&
      next.lo === old.lo &&
      next.zero === old.zero &&
      next.alloc === old.alloc
    ) {
      continue;
    }
    writeL2Entry(table, index + i, extended, next);
    dirty = true;
    if (release) freed.push(old);
  }
  if (dirty) writer.l2Cache.markDirty(l2Offset);
  for (const entry of freed) await freeAnyCluster(writer, entry, 'request');
  return count;
}

/** Zero flags for some subclusters of one cluster (QEMU's zero_l2_subclusters()). */
async function zeroSubclusters(
  writer: WriterState,
  offset: number,
  count: number,
): Promise<undefined | typeof UNSUPPORTED> {
  const { geometry } = writer;
  const { l2Offset, index } = await getClusterTable(writer, offset);
  const table = await l2Table(writer, l2Offset);
  const entry = readL2Entry(table, index, true);
  const kind = clusterKind(entry, true, writer.hasDataFile);
  if (kind === 'compressed') return UNSUPPORTED;
  const first = Math.floor((offset % geometry.clusterSize) / geometry.subclusterSize);
  const range = bitRange(first, first + count);
  const zero = (entry.zero | range) >>> 0;
  const alloc = (entry.alloc & ~range) >>> 0;
  if (zero !== entry.zero || alloc !== entry.alloc) {
    writeL2Entry(table, index, true, { ...entry, zero, alloc });
    writer.l2Cache.markDirty(l2Offset);
  }
  return undefined;
}

/**
 * QEMU's qcow2_cluster_discard() over whole clusters: entries become zero
 * clusters (v3) or unallocated (no backing file / full discard), their host
 * clusters are released.
 */
export async function discardClusters(
  writer: WriterState,
  offset: number,
  bytes: number,
  type: DiscardType,
  fullDiscard: boolean,
): Promise<undefined> {
  const { geometry } = writer;
  const extended = geometry.extendedL2;
  let clusters = Math.ceil(bytes / geometry.clusterSize);
  let position = offset;
  writer.refcounts.cacheDiscards = true;
  try {
    while (clusters > 0) {
      const { l2Offset, index } = await getClusterTable(writer, position);
      const count = Math.min(clusters, geometry.l2Entries - index);
      const table = await l2Table(writer, l2Offset);
      const freed: Array<{ hi: number; lo: number }> = [];
      let dirty = false;
      for (let i = 0; i < count; i++) {
        const old = readL2Entry(table, index + i, extended);
        const kind = clusterKind(old, extended, writer.hasDataFile);
        let next = { ...old };
        if (fullDiscard) {
          next = { hi: 0, lo: 0, zero: 0, alloc: 0 };
        } else if (writer.image.backing || isAllocatedKind(kind)) {
          next = extended
            ? { hi: 0, lo: 0, zero: ALL_ZEROES, alloc: 0 }
            : { hi: 0, lo: writer.version >= 3 ? 1 : 0, zero: 0, alloc: 0 };
        }
        if (
          next.hi === old.hi &&
          next.lo === old.lo &&
          next.zero === old.zero &&
          next.alloc === old.alloc
        ) {
          continue;
        }
        writeL2Entry(table, index + i, extended, next);
        dirty = true;
        freed.push(old);
      }
      if (dirty) writer.l2Cache.markDirty(l2Offset);
      for (const entry of freed) await freeAnyCluster(writer, entry, type);
      clusters -= count;
      position += count * geometry.clusterSize;
    }
  } finally {
    writer.refcounts.cacheDiscards = false;
    await writer.refcounts.processDiscards(true);
  }
  return undefined;
}

/** Kind of the subcluster holding `offset` (QEMU's qcow2_get_host_offset() type). */
export async function subclusterKindAtOffset(writer: WriterState, offset: number) {
  const { geometry } = writer;
  const l1Index = geometry.l1Index(offset);
  const l2Offset =
    l1Index < writer.l1.size ? writer.l1.l2Offset(l1Index, geometry, Number.MAX_SAFE_INTEGER) : 0;
  if (l2Offset === 0) return 'unallocated-plain' as const;
  const table = await l2Table(writer, l2Offset);
  const entry = readL2Entry(table, geometry.l2Index(offset), geometry.extendedL2);
  const sc = Math.floor((offset % geometry.clusterSize) / geometry.subclusterSize);
  return subclusterKind(entry, sc, geometry.extendedL2, writer.hasDataFile);
}
