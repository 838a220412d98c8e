import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_L1_SIZE } from '../format/constants.js';
import { entryOffset, isCopied } from '../format/table-entries.js';
import { L1Table } from '../image/l1-table.js';
import { HEADER_L1_SIZE_OFFSET } from './header-writer.js';
import type { WriterState } from './writer-state.js';

const COPIED = 1n << 63n;

/**
 * Makes sure the L2 table covering `guestOffset` exists and is ours alone
 * (COPIED), allocating a new one or copying a shared one first, and returns
 * its host offset and the entry index (QEMU's get_cluster_table()). The table
 * itself is then in the L2 cache; callers fetch it again after any await.
 */
export async function getClusterTable(
  writer: WriterState,
  guestOffset: number,
): Promise<{ l2Offset: number; index: number }> {
  const { geometry } = writer;
  const l1Index = geometry.l1Index(guestOffset);
  if (l1Index >= writer.l1.size) await growL1Table(writer, l1Index + 1, false);
  let l2Offset = writer.l1.l2Offset(l1Index, geometry, Number.MAX_SAFE_INTEGER);
  if (!isCopied(writer.l1.high(l1Index))) {
    await allocateL2Table(writer, l1Index);
    // The old table lost one reference (it stays with the snapshot that shares it).
    if (l2Offset !== 0)
      await writer.refcounts.freeClusters(l2Offset, geometry.clusterSize, 'other');
    l2Offset = entryOffset(writer.l1.high(l1Index), writer.l1.low(l1Index));
  }
  return { l2Offset, index: geometry.l2Index(guestOffset) };
}

/** The L2 table at `l2Offset`, from the cache. */
export async function l2Table(writer: WriterState, l2Offset: number): Promise<Buffer> {
  return writer.l2Cache.peek(l2Offset) ?? (await writer.l2Cache.get(l2Offset));
}

/**
 * Allocates a new L2 table for L1 entry `l1Index` — empty, or a copy of the
 * shared table the entry pointed to — and points the entry at it with COPIED
 * set (QEMU's l2_allocate()).
 */
async function allocateL2Table(writer: WriterState, l1Index: number): Promise<void> {
  const { geometry, refcounts, l2Cache } = writer;
  const oldOffset = writer.l1.l2Offset(l1Index, geometry, Number.MAX_SAFE_INTEGER);
  const newOffset = await refcounts.allocClusters(geometry.clusterSize);
  if (newOffset === 0) {
    throw new Qcow2Error('CORRUPT', 'refusing to put an L2 table at offset 0', {
      path: writer.file.name,
      structure: 'cluster allocation',
    });
  }
  await writer.flushRefcountBlocks();
  const table =
    oldOffset === 0
      ? Buffer.alloc(geometry.clusterSize)
      : Buffer.from(await l2Cache.get(oldOffset));
  await l2Cache.put(newOffset, table, { dirty: true });
  await writer.flushL2Tables();
  writer.l1.setEntry(l1Index, BigInt(newOffset) | COPIED);
  await writer.l1.writeEntries(writer.file, l1Index);
}

/**
 * Grows the active L1 table to at least `minSize` entries: a new table at a
 * newly allocated place, the header pointed at it, the old one freed (QEMU's
 * qcow2_grow_l1_table()). Without `exactSize` it grows by half again as QEMU
 * does for writes beyond the table.
 */
export async function growL1Table(
  writer: WriterState,
  minSize: number,
  exactSize: boolean,
): Promise<void> {
  const old = writer.l1;
  if (minSize <= old.size) return;
  let newSize = minSize;
  if (!exactSize) {
    newSize = Math.max(1, old.size);
    while (minSize > newSize) newSize = Math.ceil((newSize * 3) / 2);
  }
  if (newSize * 8 > QCOW_MAX_L1_SIZE) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `an L1 table of ${newSize} entries would exceed QEMU's 32 MiB limit`,
      { path: writer.file.name, structure: 'L1 table' },
    );
  }
  const bytes = Buffer.alloc(newSize * 8);
  old.bytes.copy(bytes);
  const offset = await writer.refcounts.allocClusters(bytes.byteLength);
  await writer.flushRefcountBlocks();
  await writer.file.write(offset, bytes);
  const fields = Buffer.alloc(12);
  fields.writeUInt32BE(newSize, 0);
  fields.writeBigUInt64BE(BigInt(offset), 4);
  await writer.file.write(HEADER_L1_SIZE_OFFSET, fields);
  writer.installL1Table(new L1Table(offset, bytes, writer.file.name));
  await writer.refcounts.freeClusters(old.offset, old.size * 8, 'other');
}
