import { Qcow2Error } from '../errors.js';
import { readRefcount, refcountTableEntryOffset } from '../format/table-entries.js';
import type { Qcow2Image } from '../image/qcow2-image.js';

/**
 * QEMU's qcow2_detect_metadata_preallocation: an image counts as metadata-
 * preallocated when clearly more clusters are referenced than the file has
 * blocks allocated (threshold max(allocated * 10/9, allocated + 2) clusters).
 * qemu-img map then asks the file system which of those clusters are holes, so
 * we must decide the same way to report the same `zero` flags.
 *
 * Reads at most `threshold` referenced clusters' worth of refcounts.
 */
export async function detectMetadataPreallocation(image: Qcow2Image): Promise<boolean> {
  const { geometry, metadata, file } = image;
  const stat = await file.handle.stat();
  const realClusters = Math.floor((stat.blocks * 512) / geometry.clusterSize);
  const threshold = Math.max(Math.floor((realClusters * 10) / 9), realClusters + 2);
  const endCluster = Math.ceil(file.size / geometry.clusterSize);
  const tableEntries = (metadata.refcountTableClusters * geometry.clusterSize) / 8;
  const table = Buffer.alloc(
    Math.min(tableEntries, Math.ceil(endCluster / geometry.refcountBlockEntries)) * 8,
  );
  if (table.byteLength > 0) await file.read(metadata.refcountTableOffset, table);
  const block = Buffer.alloc(geometry.clusterSize);
  let loadedBlock = -1;
  let referenced = 0;
  for (let cluster = 0; cluster < endCluster && referenced < threshold; cluster++) {
    const tableIndex = geometry.refcountTableIndex(cluster);
    if (tableIndex * 8 >= table.byteLength) break;
    const blockOffset = refcountTableEntryOffset(
      table.readUInt32BE(tableIndex * 8),
      table.readUInt32BE(tableIndex * 8 + 4),
    );
    if (blockOffset === 0) {
      // A whole refcount block's worth of clusters with refcount 0.
      cluster = (tableIndex + 1) * geometry.refcountBlockEntries - 1;
      continue;
    }
    if (blockOffset !== loadedBlock) {
      if (blockOffset + geometry.clusterSize > file.size) {
        throw new Qcow2Error('CORRUPT', 'refcount block lies past the end of the file', {
          path: image.name,
          offset: metadata.refcountTableOffset + tableIndex * 8,
          structure: `refcount table entry ${tableIndex}`,
        });
      }
      await file.read(blockOffset, block);
      loadedBlock = blockOffset;
    }
    if (readRefcount(block, geometry.refcountBlockIndex(cluster), geometry.refcountOrder) !== 0) {
      referenced++;
    }
  }
  return referenced >= threshold;
}
