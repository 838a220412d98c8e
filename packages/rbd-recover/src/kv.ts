/**
 * The read-only key-value store FileStore keeps omap in (`current/omap`, LevelDB or
 * RocksDB). The readers are @x/kvstore's; this is the shape this package uses, so
 * tests and callers can hand in another opener.
 */
export interface KvStore {
  readonly kind: 'leveldb' | 'rocksdb';
  get(key: Uint8Array): Promise<Buffer | undefined>;
  /** Ascending key order, the newest visible value, deletions applied. */
  entries(options?: {
    prefix?: Uint8Array;
    start?: Uint8Array;
    end?: Uint8Array;
  }): AsyncIterable<{ key: Buffer; value: Buffer }>;
  close(): Promise<void>;
}

/** Opens a store directory read-only (it never writes there). */
export type KvStoreOpener = (
  directory: string,
  options?: { signal?: AbortSignal },
) => Promise<KvStore>;
