import { throwIfAborted } from '@x/blockio';
import type { ImageAnalysis } from '../check/analyse.js';
import { DENSE_SEGMENT, type RefcountTally } from '../check/refcount-tally.js';
import { REFBLOCK_ABSENT, REFBLOCK_INVALID } from '../check/stored-refcounts.js';
import { maxRefcount, readRefcount, writeRefcount } from '../format/table-entries.js';
import type { CopiedLocks } from './copied-locks.js';
import type { MetadataWriter } from './metadata-writer.js';

export interface RefcountFixPolicy {
  /** Lower stored refcounts that exceed the references (free leaked clusters). */
  fixLeaks: boolean;
  /** Raise stored refcounts below the references. */
  fixErrors: boolean;
  /** Clusters whose refcounts must not be touched (guest data aliasing metadata, overlapping metadata). */
  protectedClusters: RefcountTally;
  /** COPIED flags repair cannot fix: a change that would add errors through them is left alone. */
  copiedLocks?: CopiedLocks | undefined;
  signal?: AbortSignal | undefined;
}

export interface RefcountFixResult {
  leaksFixed: number;
  errorsFixed: number;
  /** Mismatches left alone because the cluster is protected. */
  protectedSkipped: number;
  /** Mismatches left alone because fixing them would add COPIED errors repair cannot fix. */
  copiedLockedSkipped: number;
  /** Leaks among the mismatches left alone (protected or COPIED-locked). */
  leaksLeft: number;
  /** Referenced clusters with no valid refcount block: only a rebuild can give them a refcount. */
  uncovered: number;
}

/**
 * Rewrites stored refcounts to the references counted, refcount block by
 * refcount block, writing only the changed bytes of each block (through the
 * undo log). Stored values are only changed where the policy allows.
 */
export async function fixRefcounts(
  analysis: ImageAnalysis,
  writer: MetadataWriter,
  policy: RefcountFixPolicy,
): Promise<RefcountFixResult> {
  const { tally, stored, facts } = analysis;
  const {
    refcountBlockEntries: perBlock,
    refcountOrder: order,
    refcountBits: bits,
    clusterSize,
  } = facts.geometry;
  const limit = maxRefcount(order);
  const total = Math.max(facts.fileClusters, tally.end);
  const result: RefcountFixResult = {
    leaksFixed: 0,
    errorsFixed: 0,
    protectedSkipped: 0,
    copiedLockedSkipped: 0,
    leaksLeft: 0,
    uncovered: 0,
  };
  const block = Buffer.alloc(clusterSize);

  for (let index = 0; index * perBlock < total; index++) {
    throwIfAborted(policy.signal);
    const first = index * perBlock;
    const count = Math.min(perBlock, total - first);
    const offset = stored.blockOffset(index);
    if (offset === REFBLOCK_ABSENT || offset === REFBLOCK_INVALID) {
      tally.segments(first, count, (start, length, value) => {
        if (value === 0) return;
        for (let cluster = start; cluster < start + length; cluster++) {
          if ((value === DENSE_SEGMENT ? tally.get(cluster) : value) > 0) result.uncovered++;
        }
      });
      continue;
    }
    await stored.readBlock(offset, block);
    let lowByte = Number.POSITIVE_INFINITY;
    let highByte = -1;
    tally.segments(first, count, (start, length, value) => {
      const entry = start - first;
      if (value !== DENSE_SEGMENT && stored.rangeEquals(block, entry, length, value)) return;
      for (let k = 0; k < length; k++) {
        const current = readRefcount(block, entry + k, order);
        const counted = Math.min(limit, value === DENSE_SEGMENT ? tally.get(start + k) : value);
        if (current === counted) continue;
        const leak = current > counted;
        if (leak ? !policy.fixLeaks : !policy.fixErrors) continue;
        if (policy.protectedClusters.get(start + k) > 0) {
          result.protectedSkipped++;
          if (leak) result.leaksLeft++;
          continue;
        }
        // A raise takes one refcount error away; a leak fix none: neither may add more than that.
        const added = policy.copiedLocks?.delta(start + k, current, counted) ?? 0;
        if (added > (leak ? 0 : 1)) {
          result.copiedLockedSkipped++;
          if (leak) result.leaksLeft++;
          continue;
        }
        writeRefcount(block, entry + k, order, counted);
        if (leak) result.leaksFixed++;
        else result.errorsFixed++;
        lowByte = Math.min(lowByte, Math.floor(((entry + k) * bits) / 8));
        highByte = Math.max(highByte, Math.floor(((entry + k + 1) * bits - 1) / 8));
      }
    });
    if (highByte >= 0) {
      await writer.queue(
        offset + lowByte,
        block.subarray(lowByte, highByte + 1),
        `refcount block ${index}: refcounts set to the references counted`,
      );
    }
  }
  await writer.sync();
  stored.invalidate();
  return result;
}
