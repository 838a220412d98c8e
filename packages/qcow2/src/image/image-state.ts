import type { BlockDevice, ByteRange, Extent, FileDevice, Semaphore } from '@x/blockio';
import type { TableCache } from '../cache/table-cache.js';
import type { CompressionType } from '../compression/decompress.js';
import type { InflatePool } from '../compression/inflate-pool.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import type { Qcow2Metadata } from '../format/image-metadata.js';
import type { Snapshot } from '../format/snapshot-table.js';
import type { GuestMapping } from '../read/guest-mapping.js';
import type { L1Table } from './l1-table.js';

/**
 * What the read and write paths need of an open image: its state and geometry
 * (see the notes in qcow2-image.ts). `Qcow2Image` implements it; the paths
 * depend on this interface instead of the facade, so the facade can call them
 * and the dependencies run one way (state at the bottom, paths over it, the
 * facade and the operations on top).
 */
export interface Qcow2ImageState extends BlockDevice {
  readonly file: FileDevice;
  readonly metadata: Qcow2Metadata;
  readonly geometry: Qcow2Geometry;
  readonly l2Cache: TableCache;
  readonly dataFile: BlockDevice;
  readonly ownsDataFile: boolean;
  readonly backing: BlockDevice | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly compressionType: CompressionType;
  readonly l1: L1Table;
  /** Recently inflated clusters keyed by their compressed host offset. */
  readonly decompressedClusters: Map<number, Promise<Buffer>>;
  /** Inflations in flight for this image. */
  readonly inflateSlots: Semaphore;
  /** The worker threads that inflate this image's compressed clusters (started on first use). */
  readonly inflatePool: InflatePool;

  extents(range?: ByteRange): AsyncIterable<Extent>;
  /** The L2 table covering L1 index `l1Index`, or undefined when its L1 entry is empty. */
  l2TableFor(l1Index: number): Promise<{ offset: number; table: Buffer } | undefined>;
  /** How a guest range maps in this image alone, as merged runs in order. */
  mapGuestRange(offset: number, length: number): Promise<GuestMapping[]>;
  /** Like mapGuestRange for a range within one L2 table's coverage, appended to `out`. */
  mapWithinL2(offset: number, end: number, out: GuestMapping[]): Promise<void>;
  /** For the writer: a moved or resized L1 table (resize, snapshot apply). */
  replaceL1Table(l1: L1Table): void;
  /** For the writer: the new virtual size after a resize. */
  setVirtualSize(size: number): void;
}
