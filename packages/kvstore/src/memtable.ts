import { compareInternal, type InternalEntry, type RangeTombstone } from './internal-key.js';
import type { DecodedBatch } from './write-batch.js';

/**
 * The writes replayed from the logs, in internal-key order: what LevelDB/RocksDB
 * recovery would put in a memtable before flushing it (kept in memory here too; the
 * logs of a live database are bounded by its write buffer size).
 */
export class Memtable {
  private readonly items: InternalEntry[] = [];
  readonly rangeTombstones: RangeTombstone[] = [];

  add(batch: DecodedBatch): void {
    for (const entry of batch.entries) this.items.push(entry);
    for (const tombstone of batch.rangeTombstones) this.rangeTombstones.push(tombstone);
  }

  seal(): void {
    this.items.sort(compareInternal);
  }

  get size(): number {
    return this.items.length;
  }

  /** Entries from the first whose user key is ≥ `start`. */
  async *entries(start?: Buffer): AsyncGenerator<InternalEntry> {
    let index = 0;
    if (start !== undefined) {
      let low = 0;
      let high = this.items.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (Buffer.compare((this.items[middle] as InternalEntry).userKey, start) < 0)
          low = middle + 1;
        else high = middle;
      }
      index = low;
    }
    for (; index < this.items.length; index++) yield this.items[index] as InternalEntry;
  }
}
