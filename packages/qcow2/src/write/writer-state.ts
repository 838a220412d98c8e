import type { BlockDevice, FileDevice } from '@x/blockio';
import type { TableCache } from '../cache/table-cache.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import type { Qcow2ImageState } from '../image/image-state.js';
import type { L1Table } from '../image/l1-table.js';
import type { SnapshotRecord } from '../snapshot/snapshot-record.js';
import type { HeaderState } from './header-writer.js';
import type { SubclusterKind } from './l2-entries.js';
import type { RefcountAllocator } from './refcount-allocator.js';

/**
 * What the modules in src/write and src/snapshot need of the writer: its state
 * (image, files, header, caches, refcounts) and the few operations they call
 * back into. `Qcow2Writer` implements it and calls those modules, which take
 * this interface instead of the class, so the dependencies run one way.
 */
export interface WriterState {
  readonly image: Qcow2ImageState;
  readonly file: FileDevice;
  readonly dataFile: BlockDevice;
  readonly hasDataFile: boolean;
  readonly geometry: Qcow2Geometry;
  readonly state: HeaderState;
  readonly refcounts: RefcountAllocator;
  readonly refblockCache: TableCache;
  readonly l2Cache: TableCache;
  readonly l1: L1Table;
  readonly version: number;
  readonly lazyRefcounts: boolean;
  readonly dataFileRaw: boolean;
  /** Bytes of the on-disk snapshot table, without padding after the last entry. */
  snapshotTableBytes: number;

  /** The snapshots as the writer keeps them (loaded from the table read at open). */
  snapshotRecords(): SnapshotRecord[];
  setSnapshotRecords(records: SnapshotRecord[]): void;
  /** Writes dirty tables back and syncs (QEMU's bdrv_flush inside snapshot operations). */
  flushCaches(): Promise<void>;
  /** Grows the disk from inside another operation (snapshot apply). */
  growTo(size: number): Promise<void>;
  /** Refuses up front when one more reference would overflow a refcount. */
  checkRefcountHeadroom(): Promise<void>;
  /** Before an L2 entry starts pointing at new clusters. */
  beforeL2Update(): Promise<void>;
  flushRefcountBlocks(): Promise<void>;
  flushL2Tables(): Promise<void>;
  /** Makes a new active L1 table current (after growing or moving it). */
  installL1Table(l1: L1Table): void;
  /** What the guest sees at [offset, offset + length) before a write changes the mapping. */
  readGuestForCow(offset: number, length: number): Promise<Buffer>;
  /** True when the guest range reads as zeros (zero clusters, or unallocated down the chain). */
  readsAsZero(offset: number, length: number): Promise<boolean>;
  subclusterKindAt(offset: number): Promise<SubclusterKind>;
  /** Zeros a range of the data file (QEMU passes discards down; they read as zeros). */
  zeroDataFileRange(offset: number, length: number): Promise<void>;
  /** Makes the data file at least `size` bytes. */
  extendDataFile(size: number): Promise<void>;
  setDataFileSize(size: number): Promise<void>;
}
