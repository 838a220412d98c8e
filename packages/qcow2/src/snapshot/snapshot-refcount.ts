import { Qcow2Error } from '../errors.js';
import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import { clusterKind, readL2Entry, writeL2Entry } from '../write/l2-entries.js';
import { l2Table } from '../write/l2-tables.js';
import type { WriterState } from '../write/writer-state.js';

const HI_COPIED = 0x80000000;

/**
 * Adds `addend` (+1, -1 or 0) to the refcount of every L2 table and data
 * cluster an L1 table references, and sets COPIED on every entry whose
 * cluster then has refcount 1 (clearing it elsewhere) — QEMU's
 * qcow2_update_snapshot_refcount(). The active L1 table is used from memory
 * (qcow2_snapshot_goto relies on that); another L1 table is read from disk and,
 * unless it is being dropped (addend -1), written back with its new flags.
 */
export async function updateSnapshotRefcount(
  writer: WriterState,
  l1Offset: number,
  l1Size: number,
  addend: -1 | 0 | 1,
): Promise<void> {
  const { geometry, refcounts } = writer;
  const clusterSize = geometry.clusterSize;
  const extended = geometry.extendedL2;
  const active = l1Offset === writer.l1.offset;
  const l1 = active ? writer.l1.bytes : Buffer.alloc(l1Size * 8);
  if (!active && l1Size > 0) await writer.file.read(l1Offset, l1);
  const change = Math.abs(addend);
  const decrease = addend < 0;
  let l1Modified = false;
  refcounts.cacheDiscards = true;
  let failed = false;
  try {
    for (let i = 0; i < l1Size; i++) {
      const hi = l1.readUInt32BE(i * 8);
      const lo = l1.readUInt32BE(i * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      const l2Offset = entryOffset(hi, lo);
      if (l2Offset % clusterSize !== 0) {
        throw new Qcow2Error(
          'CORRUPT',
          `L2 table offset 0x${l2Offset.toString(16)} is not cluster aligned`,
          {
            path: writer.file.name,
            offset: l1Offset + i * 8,
            structure: `L1 table entry ${i}`,
          },
        );
      }
      for (let j = 0; j < geometry.l2Entries; j++) {
        const old = readL2Entry(await l2Table(writer, l2Offset), j, extended);
        const entry = { ...old, hi: (old.hi & ~HI_COPIED) >>> 0 };
        const kind = clusterKind(entry, extended, writer.hasDataFile);
        let refcount = 0;
        if (kind === 'compressed') {
          if (change !== 0) {
            const { offset, length } = decodeCompressedDescriptor(
              entry.hi,
              entry.lo,
              geometry.clusterBits,
            );
            await refcounts.updateRefcount(offset, length, change, decrease, 'snapshot');
          }
          refcount = 2; // compressed clusters are never written in place
        } else if (kind === 'normal' || kind === 'zero-alloc') {
          const offset = entryOffset(entry.hi, entry.lo);
          if (offset % clusterSize !== 0) {
            throw new Qcow2Error(
              'CORRUPT',
              `cluster offset 0x${offset.toString(16)} is not cluster aligned`,
              {
                path: writer.file.name,
                offset: l2Offset + j * geometry.l2EntrySize,
                structure: 'L2 table',
              },
            );
          }
          if (!writer.hasDataFile) {
            if (change !== 0)
              await refcounts.updateClusterRefcount(
                offset / clusterSize,
                change,
                decrease,
                'snapshot',
              );
            refcount = await refcounts.getRefcount(offset / clusterSize);
          } else {
            refcount = 1;
          }
        }
        if (refcount === 1) entry.hi = (entry.hi | HI_COPIED) >>> 0;
        if (entry.hi !== old.hi) {
          if (addend > 0) refcounts.l2DependsOnRefblocks = true;
          const table = await l2Table(writer, l2Offset);
          writeL2Entry(table, j, extended, { hi: entry.hi, lo: entry.lo });
          writer.l2Cache.markDirty(l2Offset);
        }
      }
      if (change !== 0) {
        await refcounts.updateClusterRefcount(l2Offset / clusterSize, change, decrease, 'snapshot');
      }
      const l2Refcount = await refcounts.getRefcount(l2Offset / clusterSize);
      const newHi = l2Refcount === 1 ? (hi | HI_COPIED) >>> 0 : (hi & ~HI_COPIED) >>> 0;
      if (newHi !== hi) {
        l1.writeUInt32BE(newHi, i * 8);
        l1Modified = true;
      }
    }
    await writer.flushCaches();
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    refcounts.cacheDiscards = false;
    await refcounts.processDiscards(!failed);
  }
  if (addend >= 0 && l1Modified) await writer.file.write(l1Offset, l1.subarray(0, l1Size * 8));
}
