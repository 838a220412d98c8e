import { BlockIoError } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { HEADER_SIZE_OFFSET, writeHeaderField } from './header-writer.js';
import type { WriterState } from './writer-state.js';
import { discardClusters } from './zeroes.js';

/**
 * Shrinks the virtual disk to `newSize` bytes as QEMU's qcow2_co_truncate()
 * does, step for step, so the file ends up byte for byte as `qemu-img resize
 * --shrink` leaves it: the clusters past the new end are dropped (full
 * discard: entries become unallocated, references released, their bytes
 * zeroed), the L1 entries past the new end are zeroed on disk and their L2
 * tables freed (the header keeps its L1 size, as QEMU's does), refcount
 * blocks that count nothing any more are dropped, the file is cut after its
 * last used cluster, and the header's size is updated last.
 *
 * Whatever the guest had past `newSize` is gone: callers check first (see
 * resizeQcow2).
 */
export async function shrinkImage(writer: WriterState, newSize: number): Promise<void> {
  const { geometry } = writer;
  const clusterSize = geometry.clusterSize;
  const oldSize = writer.image.size;
  const where = { path: writer.file.name, structure: 'resize' };
  if (newSize % 512 !== 0) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `the new size ${newSize} is not a multiple of 512`,
      where,
    );
  }
  if (writer.hasDataFile) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      'shrinking an image with an external data file is not supported',
      where,
    );
  }
  const cropFrom = Math.ceil(newSize / clusterSize) * clusterSize;
  if (oldSize > cropFrom) {
    await discardClusters(writer, cropFrom, oldSize - cropFrom, 'always', true);
  }
  await shrinkL1Table(writer, geometry.l1EntriesFor(newSize));
  await writer.refcounts.shrinkTable();
  const fileSize = writer.file.size;
  const last = await writer.refcounts.lastUsedCluster(fileSize);
  if ((last + 1) * clusterSize < fileSize) await writer.file.truncate((last + 1) * clusterSize);
  writer.image.setVirtualSize(newSize);
  writer.state.header.size = BigInt(newSize);
  await writeHeaderField(writer.file, HEADER_SIZE_OFFSET, 8, newSize);
}

/**
 * QEMU's qcow2_shrink_l1_table(): the entries from `size` on are zeroed on
 * disk (and synced), then their L2 tables are freed, last first. The table
 * itself keeps its length.
 */
async function shrinkL1Table(writer: WriterState, size: number): Promise<void> {
  const { l1, geometry } = writer;
  if (size >= l1.size) return;
  await writer.file.write(l1.offset + size * 8, Buffer.alloc((l1.size - size) * 8));
  await writer.file.flush();
  for (let index = l1.size - 1; index > size - 1; index--) {
    const l2Offset = l1.l2Offset(index, geometry, Number.MAX_SAFE_INTEGER);
    l1.setEntry(index, 0n);
    if (l2Offset !== 0)
      await writer.refcounts.freeClusters(l2Offset, geometry.clusterSize, 'always');
  }
}
