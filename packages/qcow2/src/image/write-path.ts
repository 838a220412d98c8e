import type { Qcow2Image } from './qcow2-image.js';

/**
 * What a writable `Qcow2Image` delegates its writes to. The image itself only
 * reads; allocation, refcounts, copy-on-write, zero clusters and discard live in
 * the writer (src/write/, the write helper's code), which gets the image's
 * internals (host file, metadata, L1 table, L2 cache, data file, backing) through
 * the `Qcow2Image` it is created for.
 *
 * Offsets and lengths arrive already checked against the virtual size and the
 * image's open state; `close()` runs before the image closes its files, so the
 * writer can flush its caches and clear the dirty bit there.
 */
export interface Qcow2WritePath {
  write(offset: number, data: Uint8Array): Promise<void>;
  writeZeroes(offset: number, length: number): Promise<void>;
  discard(offset: number, length: number): Promise<void>;
  /** Makes everything written so far durable (metadata included). */
  flush(): Promise<void>;
  /** Flushes and releases what the writer holds. */
  close(): Promise<void>;
}

/** Builds the write path for an image opened with `writable: true`. */
export type Qcow2WritePathFactory = (image: Qcow2Image) => Qcow2WritePath | Promise<Qcow2WritePath>;
