import { Qcow2Error } from '../errors.js';
import { entryOffset } from '../format/table-entries.js';
import {
  type ClusterKind,
  clusterKind,
  ctz32,
  readL2Entry,
  type SubclusterKind,
  subclusterKind,
  subclusterRunLength,
} from './l2-entries.js';
import { getClusterTable, l2Table } from './l2-tables.js';
import type { WriterState } from './writer-state.js';

/** QEMU's BDRV_REQUEST_MAX_BYTES: the most one request handles. */
export const REQUEST_MAX_BYTES = 0x7fffffff - (0x7fffffff % 512);

/** A region of a newly mapped run that must be filled from the old contents. */
export interface CowRegion {
  /** Offset from the start of the first cluster of the run. */
  offset: number;
  nbBytes: number;
}

/**
 * One run of clusters whose L2 entries change after the data is written
 * (QEMU's QCowL2Meta): newly allocated clusters, or kept ones that stop being
 * zero / unallocated subclusters.
 */
export interface L2Meta {
  /** Host offset of the first cluster. */
  allocOffset: number;
  /** Guest offset of the first cluster (cluster aligned). */
  offset: number;
  nbClusters: number;
  /** The clusters were already ours: do not free what the entries pointed to. */
  keepOldClusters: boolean;
  cowStart: CowRegion;
  cowEnd: CowRegion;
  /** Preallocation: link the clusters without marking subclusters allocated. */
  prealloc: boolean;
}

const INVALID = -1;

/**
 * For guest range [offset, offset + bytes), finds where the data goes: a run
 * that is contiguous in the host file, made of clusters we may overwrite in
 * place and newly allocated ones (QEMU's qcow2_alloc_host_offset()). Returns
 * the host offset of `offset`, how many bytes the run covers (possibly fewer
 * than asked) and the L2 updates to make once the data is written.
 */
export async function allocHostOffset(
  writer: WriterState,
  offset: number,
  bytes: number,
): Promise<{ hostOffset: number; bytes: number; metas: L2Meta[] }> {
  let start = offset;
  let remaining = bytes;
  let clusterOffset = INVALID;
  let hostOffset = INVALID;
  let current = 0;
  const metas: L2Meta[] = [];
  for (;;) {
    if (hostOffset === INVALID && clusterOffset !== INVALID) hostOffset = clusterOffset;
    start += current;
    remaining -= current;
    if (clusterOffset !== INVALID) clusterOffset += current;
    if (remaining === 0) break;
    current = remaining;

    const copied = await handleCopied(writer, start, clusterOffset, current, metas);
    if (copied.done) {
      clusterOffset = copied.hostOffset;
      current = copied.bytes;
      continue;
    }
    if (copied.bytes === 0) break;

    const allocated = await handleAlloc(writer, start, clusterOffset, current, metas);
    if (allocated.done) {
      clusterOffset = allocated.hostOffset;
      current = allocated.bytes;
      continue;
    }
    break;
  }
  return { hostOffset, bytes: bytes - remaining, metas };
}

interface StepResult {
  /** Progress was made: `hostOffset` and `bytes` describe it. */
  done: boolean;
  hostOffset: number;
  bytes: number;
}

function clustersToCheck(writer: WriterState, guestOffset: number, bytes: number): number {
  const { geometry } = writer;
  let count = Math.ceil(((guestOffset % geometry.clusterSize) + bytes) / geometry.clusterSize);
  count = Math.min(count, geometry.l2Entries - geometry.l2Index(guestOffset));
  return Math.min(count, Math.floor(REQUEST_MAX_BYTES / geometry.clusterSize));
}

/** Clusters we can overwrite in place (normal or zero-alloc, COPIED). */
async function handleCopied(
  writer: WriterState,
  guestOffset: number,
  wantedHostOffset: number,
  bytes: number,
  metas: L2Meta[],
): Promise<StepResult> {
  const { geometry } = writer;
  const clusterSize = geometry.clusterSize;
  const count = clustersToCheck(writer, guestOffset, bytes);
  const { l2Offset, index } = await getClusterTable(writer, guestOffset);
  const table = await l2Table(writer, l2Offset);
  const entry = readL2Entry(table, index, geometry.extendedL2);
  const hostCluster = entryOffset(entry.hi, entry.lo);
  if (needsNewAllocation(writer, entry)) return { done: false, hostOffset: 0, bytes };
  if (hostCluster % clusterSize !== 0) {
    throw new Qcow2Error(
      'CORRUPT',
      `${(entry.lo & 1) !== 0 ? 'preallocated zero' : 'data'} cluster offset 0x${hostCluster.toString(16)} is not cluster aligned (guest offset 0x${guestOffset.toString(16)})`,
      {
        path: writer.file.name,
        offset: l2Offset + index * geometry.l2EntrySize,
        structure: 'L2 table',
      },
    );
  }
  if (wantedHostOffset !== INVALID && hostCluster !== wantedHostOffset) {
    return { done: false, hostOffset: 0, bytes: 0 };
  }
  const keep = countSingleWriteClusters(writer, count, table, index, false);
  const length = Math.min(bytes, keep * clusterSize - (guestOffset % clusterSize));
  calculateL2Meta(writer, hostCluster, guestOffset, length, table, index, true, metas, l2Offset);
  return { done: true, hostOffset: hostCluster + (guestOffset % clusterSize), bytes: length };
}

/** Clusters that need new host clusters (unallocated, zero, compressed or shared). */
async function handleAlloc(
  writer: WriterState,
  guestOffset: number,
  wantedHostOffset: number,
  bytes: number,
  metas: L2Meta[],
): Promise<StepResult> {
  const { geometry, refcounts } = writer;
  const clusterSize = geometry.clusterSize;
  let count = clustersToCheck(writer, guestOffset, bytes);
  const { l2Offset, index } = await getClusterTable(writer, guestOffset);
  count = countSingleWriteClusters(writer, count, await l2Table(writer, l2Offset), index, true);
  let allocOffset: number;
  if (writer.hasDataFile) {
    // External data files map guest offsets one to one.
    allocOffset = guestOffset - (guestOffset % clusterSize);
  } else if (wantedHostOffset === INVALID) {
    allocOffset = await refcounts.allocClusters(count * clusterSize);
  } else {
    allocOffset = wantedHostOffset - (wantedHostOffset % clusterSize);
    count = await refcounts.allocClustersAt(allocOffset, count);
  }
  if (count === 0) return { done: false, hostOffset: 0, bytes: 0 };
  const inCluster = guestOffset % clusterSize;
  const available = Math.min(bytes + inCluster, count * clusterSize);
  const length = Math.min(bytes, available - inCluster);
  const table = await l2Table(writer, l2Offset);
  calculateL2Meta(writer, allocOffset, guestOffset, length, table, index, false, metas, l2Offset);
  return { done: true, hostOffset: allocOffset + inCluster, bytes: length };
}

/** QEMU's cluster_needs_new_alloc(). */
export function needsNewAllocation(
  writer: WriterState,
  entry: { hi: number; lo: number },
): boolean {
  const kind: ClusterKind = clusterKind(entry, writer.geometry.extendedL2, writer.hasDataFile);
  if (kind === 'normal' || kind === 'zero-alloc') return (entry.hi & 0x80000000) === 0;
  return true;
}

/**
 * How many clusters from `index` on can be handled by one write: all needing
 * a new allocation, or (with `newAlloc` false) all writable in place and
 * contiguous in the host file (QEMU's count_single_write_clusters()).
 */
function countSingleWriteClusters(
  writer: WriterState,
  count: number,
  table: Buffer,
  index: number,
  newAlloc: boolean,
): number {
  const { geometry } = writer;
  const first = readL2Entry(table, index, geometry.extendedL2);
  let expected = entryOffset(first.hi, first.lo);
  let i = 0;
  for (; i < count; i++) {
    const entry = readL2Entry(table, index + i, geometry.extendedL2);
    if (needsNewAllocation(writer, entry) !== newAlloc) break;
    if (!newAlloc) {
      if (expected !== entryOffset(entry.hi, entry.lo)) break;
      expected += geometry.clusterSize;
    }
  }
  return i;
}

/**
 * Records the L2 update and the copy-on-write regions a write of `bytes` at
 * `guestOffset` into host clusters at `hostCluster` needs (QEMU's
 * calculate_l2_meta()). Writes into clusters we own whose subclusters are all
 * normal need nothing.
 */
export function calculateL2Meta(
  writer: WriterState,
  hostCluster: number,
  guestOffset: number,
  bytes: number,
  table: Buffer,
  firstIndex: number,
  keepOld: boolean,
  metas: L2Meta[],
  l2Offset: number,
): void {
  const { geometry } = writer;
  const extended = geometry.extendedL2;
  const clusterSize = geometry.clusterSize;
  const subclusterSize = geometry.subclusterSize;
  const subclusters = geometry.subclustersPerCluster;
  const scIndex = (offset: number) => Math.floor((offset % clusterSize) / subclusterSize);
  const kindAt = (index: number, sc: number): SubclusterKind =>
    subclusterKind(readL2Entry(table, index, extended), sc, extended, writer.hasDataFile);

  const cowStartTo = guestOffset % clusterSize;
  const cowEndFrom = cowStartTo + bytes;
  const nbClusters = Math.ceil(cowEndFrom / clusterSize);
  let skipCow = keepOld;
  for (let i = 0; i < nbClusters; i++) {
    const entry = readL2Entry(table, firstIndex + i, extended);
    let kind: SubclusterKind;
    if (skipCow) {
      const writeFrom = Math.max(cowStartTo, i * clusterSize);
      const writeTo = Math.min(cowEndFrom, (i + 1) * clusterSize);
      const firstSc = Math.floor((writeFrom - i * clusterSize) / subclusterSize);
      const lastSc = Math.floor((writeTo - 1 - i * clusterSize) / subclusterSize);
      const run = subclusterRunLength(entry, firstSc, subclusters, extended, writer.hasDataFile);
      kind = run.kind;
      if (kind !== 'normal' || firstSc + run.count <= lastSc) skipCow = false;
    } else {
      kind = subclusterKind(entry, 0, extended, writer.hasDataFile);
    }
    if (kind === 'invalid') {
      throw new Qcow2Error(
        'CORRUPT',
        `invalid cluster entry (subcluster allocated and zero at once, or allocated without a host cluster)`,
        {
          path: writer.file.name,
          offset: l2Offset + (firstIndex + i) * geometry.l2EntrySize,
          structure: 'L2 table',
        },
      );
    }
  }
  if (skipCow) return;

  const firstEntry = readL2Entry(table, firstIndex, extended);
  const firstSc = scIndex(guestOffset);
  const firstKind = kindAt(firstIndex, firstSc);
  let cowStartFrom: number;
  if (!keepOld) {
    switch (firstKind) {
      case 'compressed':
        cowStartFrom = 0;
        break;
      case 'normal':
      case 'zero-alloc':
      case 'unallocated-alloc':
        cowStartFrom = extended ? Math.min(firstSc, ctz32(firstEntry.alloc)) * subclusterSize : 0;
        break;
      default:
        cowStartFrom = firstSc * subclusterSize;
    }
  } else {
    cowStartFrom = firstKind === 'normal' ? cowStartTo : firstSc * subclusterSize;
  }

  const lastIndex = firstIndex + nbClusters - 1;
  const lastEntry = readL2Entry(table, lastIndex, extended);
  const lastSc = scIndex(guestOffset + bytes - 1);
  const lastKind = kindAt(lastIndex, lastSc);
  const roundUp = (value: number, to: number) => Math.ceil(value / to) * to;
  let cowEndTo: number;
  if (!keepOld) {
    switch (lastKind) {
      case 'compressed':
        cowEndTo = roundUp(cowEndFrom, clusterSize);
        break;
      case 'normal':
      case 'zero-alloc':
      case 'unallocated-alloc':
        cowEndTo = roundUp(cowEndFrom, clusterSize);
        if (extended) {
          cowEndTo -=
            Math.min(subclusters - lastSc - 1, Math.clz32(lastEntry.alloc >>> 0)) * subclusterSize;
        }
        break;
      default:
        cowEndTo = roundUp(cowEndFrom, subclusterSize);
    }
  } else {
    cowEndTo = lastKind === 'normal' ? cowEndFrom : roundUp(cowEndFrom, subclusterSize);
  }

  metas.push({
    allocOffset: hostCluster,
    offset: guestOffset - (guestOffset % clusterSize),
    nbClusters,
    keepOldClusters: keepOld,
    cowStart: { offset: cowStartFrom, nbBytes: cowStartTo - cowStartFrom },
    cowEnd: { offset: cowEndFrom, nbBytes: cowEndTo - cowEndFrom },
    prealloc: false,
  });
}
