import type { BlockDevice } from '@x/blockio';
import type { HeaderFacts } from '../check/header-facts.js';
import type { RefcountTally } from '../check/refcount-tally.js';
import { forEachTable } from '../check/table-iterator.js';
import type { WalkOwner } from '../check/walk-tables.js';
import { entryOffset } from '../format/table-entries.js';

const HI_COPIED = 0x80000000;
const HI_COMPRESSED = 0x40000000;

/**
 * Whether repair must not write into the L2 table at `offset`: misplaced, or
 * sharing its cluster with other metadata or guest data. Its entries' COPIED
 * flags (and the L1 entry's) then stay as they are.
 */
export function isUntouchableTable(
  offset: number,
  clusterSize: number,
  protectedClusters: RefcountTally | undefined,
): boolean {
  return (
    offset % clusterSize !== 0 ||
    (protectedClusters?.get(Math.floor(offset / clusterSize)) ?? 0) > 0
  );
}

/**
 * The COPIED flags repair cannot fix: those of active L1 entries whose L2
 * table is untouchable, and of the entries inside such a table. QEMU counts
 * an error for each of them whose flag disagrees with "refcount is 1", so
 * changing such a cluster's refcount across 1 may add errors no COPIED fix
 * can take away. `delta` says how many.
 */
export class CopiedLocks {
  /** cluster → [entries with COPIED set, entries with COPIED clear]. */
  readonly #locked = new Map<number, [number, number]>();

  get size(): number {
    return this.#locked.size;
  }

  add(cluster: number, copied: boolean): void {
    let counts = this.#locked.get(cluster);
    if (counts === undefined) {
      counts = [0, 0];
      this.#locked.set(cluster, counts);
    }
    counts[copied ? 0 : 1]++;
  }

  /** The locked clusters in [first, first + count). */
  clustersIn(first: number, count: number): number[] {
    const clusters: number[] = [];
    for (const cluster of this.#locked.keys()) {
      if (cluster >= first && cluster < first + count) clusters.push(cluster);
    }
    return clusters;
  }

  /** How many more COPIED errors qemu-img reports for `cluster` with refcount `to` instead of `from`. */
  delta(cluster: number, from: number, to: number): number {
    const counts = this.#locked.get(cluster);
    if (counts === undefined) return 0;
    const [set, clear] = counts;
    const errors = (refcount: number) => (refcount !== 1 ? set : clear);
    return errors(to) - errors(from);
  }

  static async collect(
    file: BlockDevice,
    facts: HeaderFacts,
    active: WalkOwner | undefined,
    protectedClusters: RefcountTally,
    signal?: AbortSignal,
  ): Promise<CopiedLocks> {
    const locks = new CopiedLocks();
    if (active === undefined || protectedClusters.end === 0) return locks;
    const { clusterSize, l2Entries, l2EntrySize } = facts.geometry;
    await forEachTable(
      file,
      facts,
      active,
      {
        l1: (_index, hi, lo) => {
          const offset = entryOffset(hi, lo);
          if (offset === 0 || offset >= facts.fileSize) return;
          if (isUntouchableTable(offset, clusterSize, protectedClusters)) {
            locks.add(Math.floor(offset / clusterSize), (hi & HI_COPIED) !== 0);
          }
        },
        l2: ({ table, l2Offset }) => {
          if (!isUntouchableTable(l2Offset, clusterSize, protectedClusters) || facts.dataFile) {
            return;
          }
          for (let i = 0; i < l2Entries; i++) {
            const hi = table.readUInt32BE(i * l2EntrySize);
            const lo = table.readUInt32BE(i * l2EntrySize + 4);
            if ((hi & HI_COMPRESSED) !== 0) continue;
            const offset = entryOffset(hi, lo);
            if (offset === 0) continue;
            locks.add(Math.floor(offset / clusterSize), (hi & HI_COPIED) !== 0);
          }
        },
      },
      signal,
    );
    return locks;
  }
}
