import { type FileDevice, throwIfAborted } from '@x/blockio';
import type { ReferencesBeyondEnd } from '../check/beyond-end.js';
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
import type { CopiedLocks } from './copied-locks.js';
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
  /** Clusters given a refcount above their references, to keep what damaged tables may own. */
  keptClusters: number;
  /** Clusters that kept their stored refcount because the counted one would make locked COPIED flags wrong. */
  lockedClusters: number;
}

export interface RebuildStructureOptions {
  /**
   * Never lower a refcount (except the old refcount structures'): keep the
   * stored refcount where it is above the references, and (`unknownAllocated`)
   * where the stored refcount block is lost, keep every unreferenced cluster of
   * the old file allocated (refcount 1). Used when damaged snapshots or tables may still own
   * clusters the walk could not see, so they are not handed out again.
   */
  keepUnreferenced?:
    | {
        stored: StoredRefcounts;
        oldStructures: RefcountTally;
        oldFileClusters: number;
        /** Also keep unreferenced clusters whose refcount block is lost (refcount 1). */
        unknownAllocated: boolean;
      }
    | undefined;
  /**
   * COPIED flags repair cannot fix, with the stored refcounts: a locked
   * cluster keeps its stored refcount where the counted one would add errors.
   */
  copiedLocks?: { locks: CopiedLocks; stored: StoredRefcounts } | undefined;
  /** Where the structure goes (from `placeRefcountStructure`); default: right after the file and the tally. */
  plan?: RefcountStructurePlan | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Places a new refcount structure at or after `startCluster` (the end of the
 * file and of every counted reference) on clusters that nothing references:
 * references past the end of a truncated file must not end up pointing into
 * the new blocks or table. It takes the first such gap, so references below it
 * come inside the grown file (reading the zeros QEMU already read there) and
 * references far beyond it (absurd offsets) stay past the end, as they were.
 */
export function placeRefcountStructure(
  facts: HeaderFacts,
  startCluster: number,
  beyondEnd: ReferencesBeyondEnd,
): RefcountStructurePlan {
  let start = startCluster;
  for (;;) {
    const plan = planRefcountStructure(facts, start);
    const end = plan.fileSize / facts.clusterSize;
    const blocked = beyondEnd.firstOverlapEnd(plan.blocksCluster, end);
    if (blocked === undefined) return plan;
    start = blocked;
  }
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
    keptClusters: 0,
    lockedClusters: 0,
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
  const plan =
    options.plan ?? planRefcountStructure(facts, Math.max(facts.fileClusters, tally.end));
  if (tally.anyInRange(plan.blocksCluster, plan.blocks + plan.refcountTableClusters)) {
    throw new Qcow2Error(
      'CHANGED',
      `the new refcount structure at cluster ${plan.blocksCluster} would overlap clusters in use (did the image change during the repair?)`,
      { path: facts.path, structure: 'refcount table' },
    );
  }
  tally.addRange(plan.blocksCluster, plan.blocks + plan.refcountTableClusters);
  if (!writer.dryRun && file.size < plan.fileSize) await file.truncate(plan.fileSize);

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
    tally.segments(first, perBlock, (start, length, value) => {
      if (value === 0) return;
      for (let k = 0; k < length; k++) {
        const counted = value === DENSE_SEGMENT ? tally.get(start + k) : value;
        if (counted > 0) writeRefcount(block, start - first + k, order, Math.min(limit, counted));
      }
    });
    if (keep !== undefined) {
      // Only what the file held before is kept; the new structure's clusters are counted above.
      const end = Math.min(perBlock, keep.oldFileClusters - first, plan.blocksCluster - first);
      for (let entry = 0; entry < end; entry++) {
        if (keep.oldStructures.get(first + entry) > 0) continue;
        const counted = readRefcount(block, entry, order);
        const kept =
          oldBlock !== undefined
            ? readRefcount(oldBlock, entry, order)
            : keep.unknownAllocated && counted === 0
              ? 1
              : 0;
        if (kept > counted) {
          // Bit for bit: a 64-bit refcount above 2^53 is kept exactly.
          if (oldBlock !== undefined) copyRefcount(oldBlock, entry, block, entry, order);
          else writeRefcount(block, entry, order, kept);
          plan.keptClusters++;
        }
      }
    }
    await keepLockedRefcounts(block, first, perBlock, index, order, plan, options.copiedLocks);
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

/** Puts back the stored refcount of locked clusters whose counted refcount would add COPIED errors. */
async function keepLockedRefcounts(
  block: Buffer,
  first: number,
  perBlock: number,
  index: number,
  order: number,
  plan: RefcountStructurePlan,
  copiedLocks: RebuildStructureOptions['copiedLocks'],
): Promise<void> {
  if (copiedLocks === undefined || copiedLocks.locks.size === 0) return;
  const clusters = copiedLocks.locks.clustersIn(
    first,
    Math.min(perBlock, plan.blocksCluster - first),
  );
  if (clusters.length === 0) return;
  const { stored, locks } = copiedLocks;
  const offset = stored.blockOffset(index);
  if (offset === REFBLOCK_ABSENT || offset === REFBLOCK_INVALID) return;
  const oldBlock = Buffer.alloc(block.byteLength);
  await stored.readBlock(offset, oldBlock);
  for (const cluster of clusters) {
    const entry = cluster - first;
    const old = readRefcount(oldBlock, entry, order);
    const counted = readRefcount(block, entry, order);
    if (old === counted || locks.delta(cluster, old, counted) <= (counted > old ? 1 : 0)) continue;
    copyRefcount(oldBlock, entry, block, entry, order);
    plan.lockedClusters++;
    if (old > counted) plan.keptClusters++;
  }
}
