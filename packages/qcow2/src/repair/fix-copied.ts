import type { HeaderFacts } from '../check/header-facts.js';
import type { RefcountTally } from '../check/refcount-tally.js';
import type { StoredRefcounts } from '../check/stored-refcounts.js';
import { forEachTable } from '../check/table-iterator.js';
import type { WalkOwner } from '../check/walk-tables.js';
import { entryOffset } from '../format/table-entries.js';
import { isUntouchableTable } from './copied-locks.js';
import type { MetadataWriter } from './metadata-writer.js';

const HI_COPIED = 0x80000000;
const HI_COMPRESSED = 0x40000000;

/** The refcount COPIED is judged against; undefined when unknown (then the entry is left alone). */
export type RefcountLookup = (cluster: number) => number | undefined | Promise<number | undefined>;

/** A lookup over stored refcounts that only waits when a refcount block must be read. */
export function storedLookup(stored: StoredRefcounts): RefcountLookup {
  return (cluster) => {
    const value = stored.peek(cluster);
    return value === null ? stored.get(cluster) : value;
  };
}

/**
 * Sets COPIED on active L1 and L2 entries exactly when the refcount is 1, and
 * clears it on compressed clusters (qemu-img check -r all does the same).
 * Each changed L2 table is written once, only the changed span.
 */
export async function fixCopiedFlags(
  facts: HeaderFacts,
  active: WalkOwner,
  refcountOf: RefcountLookup,
  writer: MetadataWriter,
  options: { protectedClusters?: RefcountTally | undefined; signal?: AbortSignal | undefined } = {},
): Promise<number> {
  const { clusterSize, l2Entries, l2EntrySize } = facts.geometry;
  // Never write into a table that is misplaced or shares its cluster with other metadata.
  const untouchable = (offset: number) =>
    isUntouchableTable(offset, clusterSize, options.protectedClusters);
  let fixed = 0;
  // An L2 table shared by two L1 entries is fixed once (the second visit would read it unchanged).
  const visited = new Set<number>();
  await forEachTable(
    writer.image,
    facts,
    active,
    {
      l1: async (index, hi, lo, at) => {
        const offset = entryOffset(hi, lo);
        if (offset === 0 || offset >= facts.fileSize || untouchable(offset)) return;
        const refcount = await refcountOf(Math.floor(offset / clusterSize));
        if (refcount === undefined || (refcount === 1) === ((hi & HI_COPIED) !== 0)) return;
        const entry = Buffer.alloc(8);
        entry.writeUInt32BE(refcount === 1 ? (hi | HI_COPIED) >>> 0 : (hi & ~HI_COPIED) >>> 0, 0);
        entry.writeUInt32BE(lo, 4);
        fixed++;
        await writer.queue(
          at,
          entry,
          `active L1 entry ${index}: COPIED ${refcount === 1 ? 'set' : 'cleared'}`,
        );
      },
      l2: async ({ table, l1Index, l2Offset }) => {
        if (untouchable(l2Offset) || visited.has(l2Offset)) return;
        visited.add(l2Offset);
        let low = -1;
        let high = -1;
        for (let i = 0; i < l2Entries; i++) {
          const at = i * l2EntrySize;
          const hi = table.readUInt32BE(at);
          const lo = table.readUInt32BE(at + 4);
          let wanted: boolean;
          if ((hi & HI_COMPRESSED) !== 0) {
            wanted = false;
          } else {
            const offset = entryOffset(hi, lo);
            if (offset === 0 || facts.dataFile) continue;
            let refcount = refcountOf(Math.floor(offset / clusterSize));
            if (typeof refcount !== 'number' && refcount !== undefined) refcount = await refcount;
            if (refcount === undefined) continue;
            wanted = refcount === 1;
          }
          if (wanted === ((hi & HI_COPIED) !== 0)) continue;
          table.writeUInt32BE(wanted ? (hi | HI_COPIED) >>> 0 : (hi & ~HI_COPIED) >>> 0, at);
          fixed++;
          if (low < 0) low = i;
          high = i;
        }
        if (low >= 0) {
          await writer.queue(
            l2Offset + low * l2EntrySize,
            table.subarray(low * l2EntrySize, (high + 1) * l2EntrySize),
            `L2 table of active L1 entry ${l1Index}: COPIED flags`,
          );
        }
      },
    },
    options.signal,
  );
  await writer.sync();
  return fixed;
}
