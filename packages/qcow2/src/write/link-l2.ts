import { freeAnyCluster } from './free-cluster.js';
import type { L2Meta } from './host-offset.js';
import { bitRange, entryIsZero, readL2Entry, standardEntry, writeL2Entry } from './l2-entries.js';
import { getClusterTable, l2Table } from './l2-tables.js';
import type { WriterState } from './writer-state.js';

/**
 * Copies the parts of the new clusters the write does not cover from what the
 * guest saw there before (QEMU's perform_cow() without guest data).
 */
export async function performCow(writer: WriterState, meta: L2Meta): Promise<void> {
  for (const region of [meta.cowStart, meta.cowEnd]) {
    if (region.nbBytes === 0) continue;
    const bytes = await writer.readGuestForCow(meta.offset + region.offset, region.nbBytes);
    await writer.dataFile.write(meta.allocOffset + region.offset, bytes);
  }
}

/**
 * Points the L2 entries of a freshly written run at their host clusters with
 * COPIED set, marks written subclusters allocated, and drops the references
 * of clusters the entries pointed to before (QEMU's
 * qcow2_alloc_cluster_link_l2(), after the copy-on-write).
 */
export async function linkL2(writer: WriterState, meta: L2Meta): Promise<void> {
  await writer.beforeL2Update();
  const { geometry } = writer;
  const extended = geometry.extendedL2;
  const { l2Offset, index } = await getClusterTable(writer, meta.offset);
  const table = await l2Table(writer, l2Offset);
  const old: Array<{ hi: number; lo: number }> = [];
  const clusterSize = geometry.clusterSize;
  for (let i = 0; i < meta.nbClusters; i++) {
    const entry = readL2Entry(table, index + i, extended);
    if (!entryIsZero(entry)) old.push(entry);
    const next: { hi: number; lo: number; zero?: number; alloc?: number } = standardEntry(
      meta.allocOffset + i * clusterSize,
      { copied: true },
    );
    if (extended && !meta.prealloc) {
      const writtenFrom = Math.max(meta.cowStart.offset, i * clusterSize);
      const writtenTo = Math.min(meta.cowEnd.offset + meta.cowEnd.nbBytes, (i + 1) * clusterSize);
      const firstSc = Math.floor((writtenFrom - i * clusterSize) / geometry.subclusterSize);
      const lastSc = Math.floor((writtenTo - 1 - i * clusterSize) / geometry.subclusterSize);
      const range = bitRange(firstSc, lastSc + 1);
      next.alloc = (entry.alloc | range) >>> 0;
      next.zero = (entry.zero & ~range) >>> 0;
    }
    writeL2Entry(table, index + i, extended, next);
  }
  writer.l2Cache.markDirty(l2Offset);
  if (!meta.keepOldClusters) {
    for (const entry of old) await freeAnyCluster(writer, entry, 'never');
  }
}
