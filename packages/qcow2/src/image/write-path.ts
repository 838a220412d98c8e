import type { SnapshotEntry } from '../snapshot/snapshot-entry.js';

/** How `writeZeroes` treats clusters the image already holds. */
export interface WriteZeroesOptions {
  /** Release allocated clusters instead of keeping them as preallocated zero clusters. */
  unmap?: boolean | undefined;
}

/** `'metadata'`: allocate the L2 tables and clusters of the new range up front. */
export type Preallocation = 'off' | 'metadata';

export interface ResizeOptions {
  /** Default `'off'`. Growing only. */
  preallocation?: Preallocation | undefined;
  /**
   * Allow a smaller size: whatever the guest had past the new end is dropped
   * (`qemu-img resize --shrink`). Default false: shrinking is refused.
   */
  shrink?: boolean | undefined;
}

export interface CreateSnapshotOptions {
  /** When the snapshot was taken. Default: now. */
  date?: { sec: number; nsec: number } | undefined;
}

/**
 * A whole cluster compressed ahead (on a worker thread) with the image's
 * compression type: deflateCluster's result for zlib, zstdCluster's for zstd.
 */
export interface PrecompressedCluster {
  /** The compressed bytes, or undefined when the cluster does not shrink. */
  compressed: Uint8Array | undefined;
}

/**
 * What a writable `Qcow2Image` delegates its writes to. The image itself only
 * reads; allocation, refcounts, copy-on-write, zero clusters and discard live in
 * the writer (src/write/, the write helper's code), which gets the image's
 * internals (host file, metadata, L1 table, L2 cache, data file, backing) through
 * the `Qcow2Image` it is created for (as a `Qcow2ImageState`).
 *
 * Offsets and lengths arrive already checked against the virtual size and the
 * image's open state; `close()` runs before the image closes its files, so the
 * writer can flush its caches and clear the dirty bit there.
 *
 * `writeCompressed`, `resize` and `createSnapshot` are optional: a write path
 * without them makes the image's methods of the same names refuse with
 * UNSUPPORTED.
 */
export interface Qcow2WritePath {
  write(offset: number, data: Uint8Array): Promise<void>;
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void>;
  discard(offset: number, length: number): Promise<void>;
  /** One whole cluster (or the short last one) at a cluster boundary, stored compressed. */
  writeCompressed?(
    offset: number,
    cluster: Uint8Array,
    precompressed?: PrecompressedCluster,
  ): Promise<void>;
  /** Changes the virtual size to `newSize` bytes. */
  resize?(newSize: number, options?: ResizeOptions): Promise<void>;
  /** Takes an internal snapshot of the current state (everything written so far). */
  createSnapshot?(name: string, options?: CreateSnapshotOptions): Promise<SnapshotEntry>;
  /** Makes everything written so far durable (metadata included). */
  flush(): Promise<void>;
  /** Flushes and releases what the writer holds. */
  close(): Promise<void>;
}
