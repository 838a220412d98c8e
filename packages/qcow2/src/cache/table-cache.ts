import type { BlockDevice } from '@x/blockio';
import { Qcow2Error } from '../errors.js';

export interface TableCacheOptions {
  /** The file the tables live in (the qcow2 host file). */
  file: BlockDevice;
  /** Bytes per table: one cluster for L2 tables and refcount blocks. */
  tableSize: number;
  /** Memory bound; at least two tables are always kept. */
  maxBytes: number;
  /** Name used in errors: "L2 table", "refcount block". */
  structure: string;
  /**
   * Runs before any dirty table is written back (on eviction or flush), so a
   * writer can order its updates the way QEMU's cache dependencies do: e.g. make
   * refcount blocks stable before the L2 tables that reference new clusters.
   */
  beforeWriteBack?: (() => Promise<void>) | undefined;
}

interface CachedTable {
  table: Buffer;
  dirty: boolean;
}

/**
 * A bounded, least-recently-used cache of cluster-sized metadata tables (L2
 * tables; the writer may create a second one for refcount blocks). Tables are
 * keyed by their host offset. Dirty tables are written back when evicted and on
 * `flush()`; a table being written back is never reloaded stale from disk.
 *
 * Contract for writers: mutate a table only between `get()` (or `put()`)
 * resolving and the next `await`, then call `markDirty(offset)` before awaiting
 * anything: an eviction can only happen while some caller awaits.
 */
export class TableCache {
  readonly file: BlockDevice;
  readonly tableSize: number;
  readonly structure: string;
  /** Most tables held at once. */
  readonly capacity: number;
  #beforeWriteBack: (() => Promise<void>) | undefined;
  readonly #tables = new Map<number, CachedTable>();
  readonly #loading = new Map<number, Promise<Buffer>>();
  readonly #writingBack = new Map<number, Promise<void>>();
  #hits = 0;
  #misses = 0;

  constructor(options: TableCacheOptions) {
    this.file = options.file;
    this.tableSize = options.tableSize;
    this.structure = options.structure;
    this.capacity = Math.max(2, Math.floor(options.maxBytes / options.tableSize));
    this.#beforeWriteBack = options.beforeWriteBack;
  }

  /** Sets (or clears) the hook that runs before dirty tables are written back. */
  setBeforeWriteBack(hook: (() => Promise<void>) | undefined): void {
    this.#beforeWriteBack = hook;
  }

  get stats(): { hits: number; misses: number; resident: number; dirty: number } {
    let dirty = 0;
    for (const entry of this.#tables.values()) if (entry.dirty) dirty++;
    return { hits: this.#hits, misses: this.#misses, resident: this.#tables.size, dirty };
  }

  /** The table at host `offset`, loading it if needed. The caller validated the offset. */
  get(offset: number): Promise<Buffer> {
    const cached = this.#tables.get(offset);
    if (cached) {
      this.#hits++;
      this.#touch(offset, cached);
      return Promise.resolve(cached.table);
    }
    const pending = this.#loading.get(offset);
    if (pending) return pending;
    this.#misses++;
    const load = this.#load(offset).finally(() => this.#loading.delete(offset));
    this.#loading.set(offset, load);
    return load;
  }

  /** The table if it is resident, without loading or reordering anything. */
  peek(offset: number): Buffer | undefined {
    return this.#tables.get(offset)?.table;
  }

  /**
   * Inserts a table the caller built (a newly allocated L2 table), dirty unless
   * told otherwise. Replaces any resident copy.
   */
  async put(offset: number, table: Buffer, options: { dirty?: boolean } = {}): Promise<void> {
    if (table.byteLength !== this.tableSize) {
      throw new RangeError(`${this.structure} must be ${this.tableSize} bytes`);
    }
    await this.#writingBack.get(offset);
    if (!this.#tables.has(offset)) await this.#makeRoom();
    this.#tables.delete(offset);
    this.#tables.set(offset, { table, dirty: options.dirty ?? true });
  }

  /** Records that the resident table at `offset` was modified. */
  markDirty(offset: number): void {
    const cached = this.#tables.get(offset);
    if (!cached) {
      throw new Qcow2Error(
        'CORRUPT',
        `internal error: ${this.structure} at 0x${offset.toString(16)} was marked dirty but is not cached (modified across an await?)`,
        { path: this.file.name, offset, structure: this.structure },
      );
    }
    cached.dirty = true;
  }

  /** Loads (if needed), lets `mutate` change the table, and marks it dirty. */
  async update<T>(offset: number, mutate: (table: Buffer) => T): Promise<T> {
    const table = await this.get(offset);
    const result = mutate(table);
    this.markDirty(offset);
    return result;
  }

  /** Drops a table without writing it back (its cluster was freed). */
  async discard(offset: number): Promise<void> {
    await this.#writingBack.get(offset);
    this.#tables.delete(offset);
  }

  /** Writes every dirty table back, in ascending offset order. */
  async flush(): Promise<void> {
    const dirty = [...this.#tables.entries()]
      .filter(([, entry]) => entry.dirty)
      .sort(([a], [b]) => a - b);
    if (dirty.length === 0) return;
    await this.#beforeWriteBack?.();
    for (const [offset, entry] of dirty) {
      // Cleared first: a change made while the write is in flight marks it dirty again.
      entry.dirty = false;
      try {
        await this.file.write(offset, entry.table);
      } catch (error) {
        entry.dirty = true;
        throw error;
      }
    }
  }

  /** Drops every clean table (dirty ones stay until flushed). */
  dropClean(): void {
    for (const [offset, entry] of this.#tables) if (!entry.dirty) this.#tables.delete(offset);
  }

  async #load(offset: number): Promise<Buffer> {
    await this.#writingBack.get(offset);
    const table = Buffer.allocUnsafe(this.tableSize);
    await this.file.read(offset, table);
    // Someone may have put() a newer table while we read.
    const current = this.#tables.get(offset);
    if (current) return current.table;
    await this.#makeRoom();
    const raced = this.#tables.get(offset);
    if (raced) return raced.table;
    this.#tables.set(offset, { table, dirty: false });
    return table;
  }

  #touch(offset: number, entry: CachedTable): void {
    // Map iteration order is insertion order: re-inserting makes it most recent.
    this.#tables.delete(offset);
    this.#tables.set(offset, entry);
  }

  async #makeRoom(): Promise<void> {
    while (this.#tables.size >= this.capacity) {
      const oldest = this.#tables.entries().next().value;
      if (!oldest) return;
      const [offset, entry] = oldest;
      this.#tables.delete(offset);
      if (!entry.dirty) continue;
      try {
        await this.#writeBack(offset, entry.table);
      } catch (error) {
        // Keep the only up-to-date copy rather than lose the change.
        if (!this.#tables.has(offset)) this.#tables.set(offset, entry);
        throw error;
      }
    }
  }

  async #writeBack(offset: number, table: Buffer): Promise<void> {
    const write = (async () => {
      await this.#beforeWriteBack?.();
      await this.file.write(offset, table);
    })();
    this.#writingBack.set(offset, write);
    try {
      await write;
    } finally {
      this.#writingBack.delete(offset);
    }
  }
}
