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

  /** Entries from the first whose user key is ≥ `start`, in slices (see mergeBatches). */
  async *batches(start?: Buffer): AsyncGenerator<InternalEntry[]> {
    const first = start === undefined ? 0 : this.seek(start);
    for (let index = first; index < this.items.length; index += SLICE) {
      yield this.items.slice(index, index + SLICE);
    }
  }

  /** The newest entry for exactly `key`, or undefined. */
  find(key: Buffer): InternalEntry | undefined {
    const entry = this.items[this.seek(key)];
    return entry?.userKey.equals(key) ? entry : undefined;
  }

  /** The index of the first entry whose user key is ≥ `key`. */
  private seek(key: Buffer): number {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      const entry = this.items[middle] as InternalEntry;
      if (Buffer.compare(entry.userKey, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

const SLICE = 1024;
