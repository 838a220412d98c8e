import { type FileDevice, throwIfAborted } from '@x/blockio';
import type { HeaderFacts } from '../check/header-facts.js';
import { DENSE_SEGMENT, type RefcountTally } from '../check/refcount-tally.js';
import {
  REFBLOCK_ABSENT,
  REFBLOCK_INVALID,
  type StoredRefcounts,
} from '../check/stored-refcounts.js';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_REFTABLE_SIZE } from '../format/constants.js';
import { copyRefcount, maxRefcount, readRefcount, writeRefcount } from '../format/table-entries.js';
import type { MetadataWriter } from './metadata-writer.js';

/** Where a rebuilt refcount structure goes: appended after everything in use. */
export interface RefcountStructurePlan {
  /** First cluster of the new refcount blocks. */
  blocksCluster: number;
  blocks: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  /** File size afterwards. */
  fileSize: number;
}

export interface RebuildStructureOptions {
  /**
   * Keep the stored refcount of clusters nothing references (except the old
   * refcount structures): used when damaged snapshots or tables may still own
   * clusters the walk could not see, so they are not handed out again.
   */
  keepUnreferenced?: { stored: StoredRefcounts; oldStructures: RefcountTally } | undefined;
  signal?: AbortSignal | undefined;
}

/** Sizes the new structure so its blocks also cover themselves and the new table. */
export function planRefcountStructure(
  facts: HeaderFacts,
  endCluster: number,
): RefcountStructurePlan {
  const { refcountBlockEntries: perBlock, clusterSize } = facts.geometry;
  let blocks = Math.max(1, Math.ceil(endCluster / perBlock));
  let tableClusters = 1;
  for (;;) {
    tableClusters = Math.ceil((blocks * 8) / clusterSize);
    const needed = Math.ceil((endCluster + blocks + tableClusters) / perBlock);
    if (needed <= blocks) break;
    blocks = needed;
  }
  if (tableClusters * clusterSize > QCOW_MAX_REFTABLE_SIZE) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `a refcount table for ${endCluster} clusters needs ${tableClusters} clusters, above QEMU's 8 MiB limit`,
      { path: facts.path, structure: 'refcount table' },
    );
  }
  const tableCluster = endCluster + blocks;
  return {
    blocksCluster: endCluster,
    blocks,
    refcountTableOffset: tableCluster * clusterSize,
    refcountTableClusters: tableClusters,
    fileSize: (tableCluster + tableClusters) * clusterSize,
  };
}

/**
 * Writes a complete new refcount structure from the tally (which must not
 * count the old refcount table and blocks): new blocks and table appended at
 * the end of the file, flushed, then the header switched to them in one
 * 12-byte write. Until that write the old structure stays in force, so an
 * interruption leaves the image as it was (only longer).
 */
export async function writeRefcountStructure(
  file: FileDevice,
  facts: HeaderFacts,
  tally: RefcountTally,
  writer: MetadataWriter,
  options: RebuildStructureOptions = {},
): Promise<RefcountStructurePlan> {
  const { refcountBlockEntries: perBlock, refcountOrder: order, clusterSize } = facts.geometry;
  const limit = maxRefcount(order);
  const plan = planRefcountStructure(facts, Math.max(facts.fileClusters, tally.end));
  tally.addRange(plan.blocksCluster, plan.blocks + plan.refcountTableClusters);
  if (!writer.dryRun) await file.truncate(plan.fileSize);

  const block = Buffer.alloc(clusterSize);
  const keep = options.keepUnreferenced;
  const old = keep ? Buffer.alloc(clusterSize) : undefined;
  for (let index = 0; index < plan.blocks; index++) {
    throwIfAborted(options.signal);
    block.fill(0);
    const first = index * perBlock;
    // The old block of the same range, for keeping refcounts of clusters nothing references.
    let oldBlock: Buffer | undefined;
    if (keep !== undefined && old !== undefined) {
      const offset = keep.stored.blockOffset(index);
      if (offset !== REFBLOCK_ABSENT && offset !== REFBLOCK_INVALID) {
        await keep.stored.readBlock(offset, old);
        oldBlock = old;
      }
    }
    const zeroRanges: Array<[number, number]> = [];
    tally.segments(first, perBlock, (start, length, value) => {
      const entry = start - first;
      if (value === 0) {
        zeroRanges.push([entry, length]);
        return;
      }
      for (let k = 0; k < length; k++) {
        const counted = value === DENSE_SEGMENT ? tally.get(start + k) : value;
        if (counted === 0) zeroRanges.push([entry + k, 1]);
        else writeRefcount(block, entry + k, order, Math.min(limit, counted));
      }
    });
    if (keep !== undefined && oldBlock !== undefined) {
      for (const [entry, length] of zeroRanges) {
        for (let k = 0; k < length; k++) {
          const value = readRefcount(oldBlock, entry + k, order);
          if (value > 0 && keep.oldStructures.get(first + entry + k) === 0) {
            // Bit for bit: a 64-bit refcount above 2^53 is kept exactly.
            copyRefcount(oldBlock, entry + k, block, entry + k, order);
          }
        }
      }
    }
    await writer.queue(
      (plan.blocksCluster + index) * clusterSize,
      block,
      `new refcount block ${index}`,
    );
  }
  const table = Buffer.alloc(plan.refcountTableClusters * clusterSize);
  for (let index = 0; index < plan.blocks; index++) {
    table.writeBigUInt64BE(BigInt((plan.blocksCluster + index) * clusterSize), index * 8);
  }
  await writer.queue(plan.refcountTableOffset, table, 'new refcount table');
  await writer.sync();

  const header = Buffer.alloc(12);
  header.writeBigUInt64BE(BigInt(plan.refcountTableOffset), 0);
  header.writeUInt32BE(plan.refcountTableClusters, 8);
  await writer.queue(48, header, 'header: refcount_table_offset and refcount_table_clusters');
  await writer.sync();
  return plan;
}
