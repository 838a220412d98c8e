import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import { clusterKind } from './l2-entries.js';
import { type DiscardType, PASS_DISCARD } from './table-store.js';
import type { WriterState } from './writer-state.js';

/**
 * Drops the reference an L2 entry holds on its host cluster(s), whatever its
 * type: a compressed cluster's byte range, a normal or preallocated zero
 * cluster (QEMU's qcow2_free_any_cluster()).
 */
export async function freeAnyCluster(
  writer: WriterState,
  entry: { hi: number; lo: number },
  type: DiscardType,
): Promise<void> {
  const { geometry } = writer;
  const kind = clusterKind(entry, geometry.extendedL2, writer.hasDataFile);
  if (writer.hasDataFile) {
    // Data file clusters are not refcounted; QEMU only passes the discard down.
    if (PASS_DISCARD[type] && (kind === 'normal' || kind === 'zero-alloc')) {
      await writer.zeroDataFileRange(entryOffset(entry.hi, entry.lo), geometry.clusterSize);
    }
    return;
  }
  if (kind === 'compressed') {
    const { offset, length } = decodeCompressedDescriptor(entry.hi, entry.lo, geometry.clusterBits);
    await writer.refcounts.freeClusters(offset, length, type);
  } else if (kind === 'normal' || kind === 'zero-alloc') {
    const offset = entryOffset(entry.hi, entry.lo);
    // QEMU reports an unaligned cluster and leaves it alone.
    if (offset % geometry.clusterSize === 0) {
      await writer.refcounts.freeClusters(offset, geometry.clusterSize, type);
    }
  }
}
