import {
  BaseBlockDevice,
  type BlockDevice,
  BlockIoError,
  type ByteRange,
  clampRange,
  type Extent,
  type FileDevice,
  Semaphore,
} from '@x/blockio';
import type { TableCache } from '../cache/table-cache.js';
import type { CompressionType } from '../compression/decompress.js';
import { InflatePool } from '../compression/inflate-pool.js';
import { Qcow2Error } from '../errors.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import type { Qcow2Metadata } from '../format/image-metadata.js';
import type { Snapshot } from '../format/snapshot-table.js';
import { guestExtents } from '../read/guest-extents.js';
import { type GuestMapping, type MappingContext, mapL2Range } from '../read/guest-mapping.js';
import { readGuestRange } from '../read/read-path.js';
import type { SalvageLog } from '../read/salvage-log.js';
import type { SnapshotEntry } from '../snapshot/snapshot-entry.js';
import type { Qcow2ImageState } from './image-state.js';
import type { L1Table } from './l1-table.js';
import type {
  CreateSnapshotOptions,
  PrecompressedCluster,
  Qcow2WritePath,
  ResizeOptions,
  WriteZeroesOptions,
} from './write-path.js';

/*
 * Qcow2Image internals (for the writer in src/write/ and for check/map/info):
 *
 * - `file`        the qcow2 file (FileDevice). Read-only opens: exactly the bytes
 *                 on disk at open time, size fixed. Writable opens: opened with
 *                 zeroExtends, so writes past the end grow it and `file.size`
 *                 follows; allocate new clusters at (aligned) `file.size`.
 * - `metadata`    the validated header, extensions, backing name and snapshot
 *                 table as read at open (readQcow2Metadata). The writer owns
 *                 keeping it in step with what it writes to the header.
 * - `geometry`    cluster/L2/refcount sizes (metadata.geometry).
 * - `l1`          the active L1 table (or the snapshot's, for snapshot views) in
 *                 memory, at most 32 MiB. Change entries with `l1.setEntry()` and
 *                 persist them with `l1.writeEntries(file, from, to)`. After
 *                 moving or growing the table (resize, snapshot apply) install
 *                 the new one with `replaceL1Table()`.
 * - `l2Cache`     bounded LRU TableCache of L2 tables keyed by host offset.
 *                 `get(offset)` loads, `put(offset, table)` inserts a new one
 *                 (dirty), `markDirty(offset)` after changing a resident table
 *                 (before the next await), `flush()` writes dirty ones back in
 *                 offset order; eviction writes back dirty tables. Set a
 *                 `beforeWriteBack` hook to flush refcounts first.
 * - `dataFile`    where normal clusters' bytes live: `file` itself, or the
 *                 external data file (`ownsDataFile` then).
 * - `backing`     the opened backing device (Qcow2Image or raw FileDevice),
 *                 undefined when there is none or the policy says `ignore`. It is
 *                 always read-only; reads past its (shorter) size read zeros.
 * - `snapshot`    the snapshot this read-only view shows, if any.
 * - `writePath`   the Qcow2WritePath writes delegate to (writable opens only).
 *                 Reads do not lock: a writer that changes mappings concurrently
 *                 with reads serialises them itself.
 *
 * Lookups: `l2TableFor(l1Index)` (validated L2 offset + table) and
 * `mapGuestRange(offset, length)` (merged runs of normal / zero-plain /
 * zero-alloc / unallocated / compressed for this image alone) are the building
 * blocks the read path, extents(), map and the writer's copy-on-write share.
 */

/** Compressed clusters inflated at once per image by random reads (the pool queues the rest). */
const INFLATE_CONCURRENCY = 4;

export interface Qcow2ImageParts {
  file: FileDevice;
  metadata: Qcow2Metadata;
  l1: L1Table;
  l2Cache: TableCache;
  dataFile: BlockDevice;
  ownsDataFile: boolean;
  backing: BlockDevice | undefined;
  backingPath: string | undefined;
  backingFormat: 'qcow2' | 'raw' | undefined;
  snapshot: Snapshot | undefined;
  virtualSize: number;
  writable: boolean;
  /** Header bytes (first 4 KiB at most) as read at open, to notice changes. */
  headerBytes: Buffer;
  /** Salvaging read (read-only opens): see OpenQcow2Options.salvage. */
  salvage?: SalvageLog | undefined;
}

export class Qcow2Image extends BaseBlockDevice implements Qcow2ImageState {
  readonly file: FileDevice;
  readonly metadata: Qcow2Metadata;
  readonly geometry: Qcow2Geometry;
  readonly l2Cache: TableCache;
  readonly dataFile: BlockDevice;
  readonly ownsDataFile: boolean;
  readonly backing: BlockDevice | undefined;
  /** Resolved path and format of the backing file, when one was opened. */
  readonly backingPath: string | undefined;
  readonly backingFormat: 'qcow2' | 'raw' | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly compressionType: CompressionType;
  #l1: L1Table;
  #writePath: Qcow2WritePath | undefined;
  readonly #headerBytes: Buffer;
  readonly #mappingContext: MappingContext;
  /** Where a salvaging read records what it zero-filled (undefined: refuse damage). */
  readonly salvage: SalvageLog | undefined;
  /** Recently inflated clusters keyed by their compressed host offset. */
  readonly decompressedClusters = new Map<number, Promise<Buffer>>();
  /**
   * Inflations in flight for this image. More than the thread pool has threads
   * only queues buffers (and evicts them from the CPU caches) without going faster.
   */
  readonly inflateSlots = new Semaphore(INFLATE_CONCURRENCY);
  #inflatePool: InflatePool | undefined;

  constructor(parts: Qcow2ImageParts) {
    super({
      name: parts.file.name,
      size: parts.virtualSize,
      readOnly: !parts.writable,
      alignment: { logical: 1, optimal: Math.max(parts.metadata.geometry.clusterSize, 1 << 20) },
    });
    this.file = parts.file;
    this.metadata = parts.metadata;
    this.geometry = parts.metadata.geometry;
    this.#l1 = parts.l1;
    this.l2Cache = parts.l2Cache;
    this.dataFile = parts.dataFile;
    this.ownsDataFile = parts.ownsDataFile;
    this.backing = parts.backing;
    this.backingPath = parts.backingPath;
    this.backingFormat = parts.backingFormat;
    this.snapshot = parts.snapshot;
    this.compressionType = parts.metadata.compressionType;
    this.#headerBytes = parts.headerBytes;
    this.salvage = parts.salvage;
    this.#mappingContext = {
      salvage: parts.salvage,
      path: parts.file.name,
      geometry: this.geometry,
      hasDataFile: parts.ownsDataFile,
      hostFileSize: () => this.file.size,
      dataFileSize: () =>
        this.dataFile.zeroExtends ? Number.MAX_SAFE_INTEGER : this.dataFile.size,
    };
  }

  get l1(): L1Table {
    return this.#l1;
  }

  get writePath(): Qcow2WritePath | undefined {
    return this.#writePath;
  }

  /** Installs the writer (openQcow2 does this for writable opens). */
  attachWritePath(writePath: Qcow2WritePath): void {
    if (this.readOnly) {
      throw new Qcow2Error('UNSUPPORTED', 'cannot attach a write path to a read-only image', {
        path: this.name,
      });
    }
    this.#writePath = writePath;
  }

  /** For the writer: a moved or resized L1 table (resize, snapshot apply). */
  replaceL1Table(l1: L1Table): void {
    this.#l1 = l1;
  }

  /** For the writer: the new virtual size after a resize. */
  setVirtualSize(size: number): void {
    this.setSize(size);
  }

  /**
   * The L2 table covering L1 index `l1Index`: its host offset and contents, or
   * undefined when the L1 entry is empty. Throws CORRUPT for bad L1 entries.
   */
  async l2TableFor(l1Index: number): Promise<{ offset: number; table: Buffer } | undefined> {
    if (this.salvage) return this.#salvageL2Table(l1Index, this.salvage);
    const offset = this.#l1.l2Offset(l1Index, this.geometry, this.file.size);
    if (offset === 0) return undefined;
    return { offset, table: await this.l2Cache.get(offset) };
  }

  /**
   * l2TableFor when salvaging: an L2 table (partly) past the end of the file
   * reads as zeros there, as QEMU reads it, so its missing entries are
   * unallocated; the guest range they cover is recorded.
   */
  async #salvageL2Table(
    l1Index: number,
    salvage: SalvageLog,
  ): Promise<{ offset: number; table: Buffer } | undefined> {
    const { geometry } = this;
    const offset = this.#l1.l2Offset(l1Index, geometry, Number.MAX_SAFE_INTEGER);
    if (offset === 0) return undefined;
    const fileSize = this.file.size;
    if (offset + geometry.clusterSize <= fileSize) {
      return { offset, table: await this.l2Cache.get(offset) };
    }
    const present = Math.max(0, fileSize - offset);
    const table = Buffer.alloc(geometry.clusterSize);
    if (present > 0) await this.file.read(offset, table.subarray(0, present));
    const firstMissing = Math.ceil(present / geometry.l2EntrySize);
    const coverageStart = l1Index * geometry.l2Coverage;
    const start = Math.min(this.size, coverageStart + firstMissing * geometry.clusterSize);
    const end = Math.min(this.size, coverageStart + geometry.l2Coverage);
    if (end > start) {
      salvage.record({
        guestOffset: start,
        length: end - start,
        reason: 'l2-table-past-end',
        structure: `${this.snapshot ? `L1 table of snapshot ${this.snapshot.id}` : 'L1 table'} entry ${l1Index}`,
        hostOffset: offset,
        path: this.file.name,
        readsAs: 'unallocated',
      });
    }
    return { offset, table };
  }

  /**
   * How guest range [offset, offset + length) maps in this image alone (backing
   * files not consulted), as merged runs in order. Ranges past the L1 table read
   * as unallocated.
   */
  async mapGuestRange(offset: number, length: number): Promise<GuestMapping[]> {
    const out: GuestMapping[] = [];
    const end = offset + length;
    let position = offset;
    while (position < end) {
      const l1Index = this.geometry.l1Index(position);
      const sliceEnd = Math.min(end, (l1Index + 1) * this.geometry.l2Coverage);
      const l2 = await this.l2TableFor(l1Index);
      mapL2Range(this.#mappingContext, l2?.table, l2?.offset ?? 0, position, sliceEnd, out);
      position = sliceEnd;
    }
    return out;
  }

  /** Like mapGuestRange for a range within one L2 table's coverage (no array growth across tables). */
  async mapWithinL2(offset: number, end: number, out: GuestMapping[]): Promise<void> {
    const l1Index = this.geometry.l1Index(offset);
    const l2 = await this.l2TableFor(l1Index);
    mapL2Range(this.#mappingContext, l2?.table, l2?.offset ?? 0, offset, end, out);
  }

  /**
   * Data / zero / unallocated runs as the guest sees them: unallocated ranges are
   * resolved through the backing chain, so `unallocated` only remains where no
   * image in the chain has the data (and the guest reads zeros).
   */
  extents(range?: ByteRange): AsyncIterable<Extent> {
    return guestExtents(this, clampRange(this, range));
  }

  /**
   * Re-reads the header and compares it (and the file size, for read-only
   * opens) with what we saw at open; throws CHANGED if someone else modified
   * the image meanwhile. Cheap: one small read.
   */
  async checkUnchanged(): Promise<void> {
    if (!this.readOnly) return;
    const stat = await this.file.handle.stat();
    const current = Buffer.alloc(this.#headerBytes.byteLength);
    const { bytesRead } = await this.file.handle.read(current, 0, current.byteLength, 0);
    if (stat.size !== this.file.size || bytesRead !== current.byteLength) {
      throw new Qcow2Error(
        'CHANGED',
        `the image changed while being read: it was ${this.file.size} bytes and is now ${stat.size}`,
        { path: this.name, structure: 'qcow2 file' },
      );
    }
    if (!current.equals(this.#headerBytes)) {
      throw new Qcow2Error(
        'CHANGED',
        'the image header changed while being read (another program is writing to it)',
        { path: this.name, offset: 0, structure: 'qcow2 header' },
      );
    }
  }

  /**
   * Makes the range read as zeros. Version 3 images set the zero flag instead of
   * storing zeros; with `unmap` the clusters the image held are released too.
   */
  override async writeZeroes(
    offset: number,
    length: number,
    options: WriteZeroesOptions = {},
  ): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, length, 'write zeroes to');
    if (length === 0) return;
    await this.#requireWritePath().writeZeroes(offset, length, options);
  }

  /**
   * Writes one cluster compressed: `cluster` is a whole cluster (or the short last
   * one) at a cluster boundary over a cluster the image does not hold yet; one that
   * does not shrink is stored normally. Compressed as QEMU does with the image's
   * compression type (zlib: deflateCluster; zstd: zstdCluster, libzstd's default
   * level); `precompressed` is that function's result when the caller computed it
   * ahead. Images without a data file only.
   */
  async writeCompressed(
    offset: number,
    cluster: Uint8Array,
    precompressed?: PrecompressedCluster,
  ): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, cluster.byteLength, 'write compressed to');
    const writePath = this.#requireWritePath();
    if (!writePath.writeCompressed) throw this.#unsupported('compressed writes');
    await writePath.writeCompressed(offset, cluster, precompressed);
  }

  /**
   * Changes the virtual disk to `newSize` bytes (a multiple of 512). Growing always
   * works; shrinking only with `shrink: true`, and drops what the guest had past the end.
   */
  async resize(newSize: number, options: ResizeOptions = {}): Promise<void> {
    this.checkWritable();
    const writePath = this.#requireWritePath();
    if (!writePath.resize) throw this.#unsupported('resizing');
    await writePath.resize(newSize, options);
  }

  /**
   * Takes an internal snapshot of what has been written so far, as `qemu-img
   * snapshot -c NAME` would after closing (byte for byte), without closing:
   * write, snapshot, write more, snapshot again. Images with an external data
   * file cannot have internal snapshots (UNSUPPORTED).
   */
  async createSnapshot(name: string, options: CreateSnapshotOptions = {}): Promise<SnapshotEntry> {
    this.checkWritable();
    const writePath = this.#requireWritePath();
    if (!writePath.createSnapshot) throw this.#unsupported('snapshots');
    return writePath.createSnapshot(name, options);
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    try {
      await readGuestRange(this, offset, into);
    } catch (error) {
      if (error instanceof BlockIoError && error.code === 'SHORT_READ') {
        throw new Qcow2Error(
          'CHANGED',
          `a read ended early (${error.message}); the file shrank while being read`,
          { path: error.path ?? this.name, offset: error.offset, structure: 'qcow2 file' },
        );
      }
      throw error;
    }
  }

  protected override writeAt(offset: number, data: Uint8Array): Promise<void> {
    return this.#requireWritePath().write(offset, data);
  }

  protected override writeZeroesAt(offset: number, length: number): Promise<void> {
    return this.#requireWritePath().writeZeroes(offset, length);
  }

  protected override discardAt(offset: number, length: number): Promise<void> {
    return this.#requireWritePath().discard(offset, length);
  }

  protected override flushDevice(): Promise<void> {
    return this.#requireWritePath().flush();
  }

  /**
   * Worker threads that inflate this image's compressed clusters, started the
   * first time one is read and ended when the image is closed.
   */
  get inflatePool(): InflatePool {
    this.#inflatePool ??= new InflatePool(this.compressionType, this.geometry.clusterSize);
    return this.#inflatePool;
  }

  protected override async closeDevice(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<void>) => {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    };
    if (this.#writePath) await attempt(() => (this.#writePath as Qcow2WritePath).close());
    if (this.backing) await attempt(() => (this.backing as BlockDevice).close());
    if (this.ownsDataFile) await attempt(() => this.dataFile.close());
    await attempt(() => this.file.close());
    if (this.#inflatePool) await attempt(() => (this.#inflatePool as InflatePool).close());
    this.decompressedClusters.clear();
    if (errors.length > 0) throw errors[0];
  }

  #unsupported(what: string): Qcow2Error {
    return new Qcow2Error('UNSUPPORTED', `this image's write path does not support ${what}`, {
      path: this.name,
    });
  }

  #requireWritePath(): Qcow2WritePath {
    if (!this.#writePath) {
      throw new Qcow2Error('UNSUPPORTED', 'this image has no write path attached', {
        path: this.name,
      });
    }
    return this.#writePath;
  }
}
