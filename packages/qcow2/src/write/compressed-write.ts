import { BlockIoError } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { encodeCompressedEntry, entryOffset } from '../format/table-entries.js';
import type { PrecompressedCluster } from '../image/write-path.js';
import { writeGuestData } from './data-write.js';
import { deflateCluster } from './deflate-cluster.js';
import { readL2Entry, writeL2Entry } from './l2-entries.js';
import { getClusterTable, l2Table } from './l2-tables.js';
import type { WriterState } from './writer-state.js';
import { zstdCluster } from './zstd-cluster.js';

/**
 * Writes one guest cluster compressed (QEMU's
 * qcow2_co_pwritev_compressed_task()): the cluster (zero-padded when it is the
 * short last one) is compressed with the image's compression type (deflate or
 * zstd, each as QEMU does it) and packed into the host file right after the
 * previous compressed cluster; a cluster that does not shrink is written
 * normally. Like QEMU, it refuses to compress over an allocated cluster.
 */
export async function writeCompressedCluster(
  writer: WriterState,
  guestOffset: number,
  data: Uint8Array,
  deflated?: PrecompressedCluster,
): Promise<void> {
  const { geometry } = writer;
  const clusterSize = geometry.clusterSize;
  const where = { path: writer.file.name, offset: guestOffset, structure: 'compressed write' };
  if (writer.hasDataFile) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      'images with an external data file cannot hold compressed clusters',
      where,
    );
  }
  if (guestOffset % clusterSize !== 0) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      'compressed writes must start at a cluster boundary',
      where,
    );
  }
  const isLast = guestOffset + data.byteLength === writer.image.size;
  if (data.byteLength > clusterSize || (data.byteLength < clusterSize && !isLast)) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      'a compressed write covers exactly one cluster (or the short last one)',
      where,
    );
  }
  let cluster = data;
  if (data.byteLength < clusterSize) {
    cluster = new Uint8Array(clusterSize);
    cluster.set(data);
  }
  const compressed =
    deflated && cluster === data
      ? deflated.compressed
      : writer.image.compressionType === 'zstd'
        ? await zstdCluster(cluster)
        : deflateCluster(cluster);
  if (compressed === undefined) {
    await writeGuestData(writer, guestOffset, data);
    return;
  }
  const { l2Offset, index } = await getClusterTable(writer, guestOffset);
  const existing = readL2Entry(await l2Table(writer, l2Offset), index, geometry.extendedL2);
  if (entryOffset(existing.hi, existing.lo) !== 0) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      'cannot write a compressed cluster over an allocated one',
      where,
    );
  }
  const hostOffset = await writer.refcounts.allocBytes(compressed.byteLength);
  // Reads keep inflated clusters by their host offset. A freed compressed cluster's
  // offset is taken again by new compressed data: what was kept for it is stale.
  writer.image.decompressedClusters.delete(hostOffset);
  const entry = encodeCompressedEntry(hostOffset, compressed.byteLength, geometry.clusterBits);
  const table = await l2Table(writer, l2Offset);
  writeL2Entry(table, index, geometry.extendedL2, {
    hi: Number(entry >> 32n),
    lo: Number(entry & 0xffffffffn),
    zero: 0,
    alloc: 0,
  });
  writer.l2Cache.markDirty(l2Offset);
  await writer.file.write(hostOffset, compressed);
}

/**
 * What qemu-img does after its last compressed write: round the file up to a
 * whole sector, so sector-based readers can read the last compressed cluster.
 */
export async function alignFileEnd(writer: WriterState): Promise<void> {
  const size = writer.file.size;
  const aligned = Math.ceil(size / 512) * 512;
  if (aligned !== size) await writer.file.truncate(aligned);
}
