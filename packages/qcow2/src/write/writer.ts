import { type BlockDevice, BlockIoError, FileDevice, optionRemedy, zeroBuffer } from '@x/blockio';
import { TableCache } from '../cache/table-cache.js';
import { Qcow2Error } from '../errors.js';
import {
  QCOW2_AUTOCLEAR_DATA_FILE_RAW,
  QCOW2_COMPAT_LAZY_REFCOUNTS,
  QCOW2_INCOMPAT_CORRUPT,
  QCOW2_INCOMPAT_DIRTY,
} from '../format/constants.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import type { Qcow2ImageState } from '../image/image-state.js';
import type { L1Table } from '../image/l1-table.js';
import type {
  CreateSnapshotOptions,
  PrecompressedCluster,
  Qcow2WritePath,
  ResizeOptions,
  WriteZeroesOptions,
} from '../image/write-path.js';
import { type SnapshotEntry, snapshotEntry } from '../snapshot/snapshot-entry.js';
import { createSnapshotIn } from '../snapshot/snapshot-operations.js';
import type { SnapshotRecord } from '../snapshot/snapshot-record.js';
import { snapshotRecords } from '../snapshot/snapshot-table-writer.js';
import { alignFileEnd, writeCompressedCluster } from './compressed-write.js';
import { writeGuestData } from './data-write.js';
import {
  HEADER_AUTOCLEAR_OFFSET,
  HEADER_INCOMPATIBLE_OFFSET,
  type HeaderState,
  headerStateFrom,
  rewriteHeader,
  writeHeaderField,
} from './header-writer.js';
import { clusterKind, readL2Entry, type SubclusterKind } from './l2-entries.js';
import { RefcountAllocator } from './refcount-allocator.js';
import { growImage } from './resize.js';
import { shrinkImage } from './shrink.js';
import type { WriterState } from './writer-state.js';
import { discardClusters, subclusterKindAtOffset, writeZeroesRange } from './zeroes.js';

/**
 * The write side of a `Qcow2Image`: cluster allocation with refcounts kept
 * exactly as QEMU keeps them, copy-on-write from backing files, shared
 * (snapshot) and compressed clusters, zero clusters, discard, compressed
 * writes, growing, and the header's dirty / autoclear bits. Operations run
 * one at a time.
 *
 * Everything is placed where QEMU 7.2 would place it for the same sequence of
 * requests, so images we write match qemu-img's byte for byte where the
 * requests are the same (create, convert, snapshots).
 */
export class Qcow2Writer implements Qcow2WritePath, WriterState {
  readonly image: Qcow2ImageState;
  readonly file: FileDevice;
  readonly dataFile: BlockDevice;
  readonly hasDataFile: boolean;
  readonly geometry: Qcow2Geometry;
  readonly state: HeaderState;
  readonly refcounts: RefcountAllocator;
  readonly refblockCache: TableCache;
  readonly l2Cache: TableCache;
  /** Bytes of the on-disk snapshot table, without padding after the last entry. */
  snapshotTableBytes: number;
  /**
   * fsync the files on close (default). Off for images that are synced another
   * way or not at all, as qemu-img convert's target (cache=unsafe) is not.
   */
  syncOnClose = true;
  #snapshots: SnapshotRecord[] | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #prepared = false;
  #markedDirty = false;
  #closed = false;

  private constructor(image: Qcow2ImageState, refcountTable: Buffer) {
    this.image = image;
    this.file = image.file;
    this.dataFile = image.dataFile;
    this.hasDataFile = image.ownsDataFile;
    this.geometry = image.geometry;
    this.l2Cache = image.l2Cache;
    const { metadata } = image;
    this.state = headerStateFrom(metadata.header, metadata.extensions, metadata.backingFile);
    const last = metadata.snapshots.at(-1);
    this.snapshotTableBytes = last
      ? last.entryOffset +
        40 +
        last.extraData.byteLength +
        Buffer.byteLength(last.id) +
        Buffer.byteLength(last.name) -
        metadata.snapshotsOffset
      : 0;
    const clusterSize = this.geometry.clusterSize;
    this.refblockCache = new TableCache({
      file: this.file,
      tableSize: clusterSize,
      maxBytes: Math.max(4 * clusterSize, 1 << 20),
      structure: 'refcount block',
    });
    this.refcounts = new RefcountAllocator({
      file: this.file,
      geometry: this.geometry,
      refcountTable,
      refcountTableOffset: metadata.refcountTableOffset,
      refblockCache: this.refblockCache,
      l2Cache: this.l2Cache,
      writeRefcountTableLocation: async (offset, clusters) => {
        const fields = Buffer.alloc(12);
        fields.writeBigUInt64BE(BigInt(offset), 0);
        fields.writeUInt32BE(clusters, 8);
        await this.file.write(48, fields);
        this.state.header.refcountTableOffset = BigInt(offset);
        this.state.header.refcountTableClusters = clusters;
      },
      flushL2Tables: () => this.flushL2Tables(),
    });
    // QEMU's cache dependencies: new references reach disk before the L2
    // entries that use them; dropped references only after the L2 entries are gone.
    this.l2Cache.setBeforeWriteBack(async () => {
      if (this.refcounts.l2DependsOnRefblocks) {
        this.refcounts.l2DependsOnRefblocks = false;
        await this.refblockCache.flush();
      }
    });
    this.refblockCache.setBeforeWriteBack(async () => {
      if (this.refcounts.refblocksDependOnL2) {
        this.refcounts.refblocksDependOnL2 = false;
        await this.l2Cache.flush();
      }
    });
  }

  /** The write path for `image` (which must be open for writing). */
  static async open(image: Qcow2ImageState): Promise<Qcow2Writer> {
    const { metadata } = image;
    if ((metadata.header.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) !== 0n) {
      throw new Qcow2Error(
        'MARKED_CORRUPT',
        'the image is marked corrupt; repair it before writing',
        { path: image.name, offset: 72, structure: 'qcow2 header' },
      );
    }
    const length = metadata.refcountTableClusters * image.geometry.clusterSize;
    const table = Buffer.alloc(length);
    if (length > 0) await image.file.read(metadata.refcountTableOffset, table);
    return new Qcow2Writer(image, table);
  }

  get l1(): L1Table {
    return this.image.l1;
  }

  get version(): number {
    return this.state.header.version;
  }

  get lazyRefcounts(): boolean {
    return (this.state.header.compatibleFeatures & QCOW2_COMPAT_LAZY_REFCOUNTS) !== 0n;
  }

  get dataFileRaw(): boolean {
    return (
      this.hasDataFile &&
      (this.state.header.autoclearFeatures & QCOW2_AUTOCLEAR_DATA_FILE_RAW) !== 0n
    );
  }

  /** Runs `operation` after every earlier one finished. */
  exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) {
        throw new Qcow2Error('UNSUPPORTED', 'the image was closed', { path: this.file.name });
      }
      return operation();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  // ---- Qcow2WritePath ------------------------------------------------------

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.exclusive(async () => {
      await this.prepareForWrite();
      await writeGuestData(this, offset, data);
    });
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    return this.exclusive(async () => {
      await this.prepareForWrite();
      await writeZeroesRange(this, offset, length, options.unmap ?? false);
    });
  }

  /**
   * Releases whole clusters in the range as QEMU's discard does (zero clusters
   * in v3, unallocated where nothing shows through); the rest of the range is
   * zeroed, so it all reads as zeros afterwards.
   */
  discard(offset: number, length: number): Promise<void> {
    return this.exclusive(async () => {
      await this.prepareForWrite();
      const clusterSize = this.geometry.clusterSize;
      const size = this.image.size;
      const end = offset + length;
      let first = Math.ceil(offset / clusterSize) * clusterSize;
      let last = end === size ? end : end - (end % clusterSize);
      const v2WithBacking = this.version < 3 && this.image.backing !== undefined;
      if (last <= first || v2WithBacking) {
        first = offset;
        last = offset;
      }
      if (first > offset) await writeZeroesRange(this, offset, first - offset, true);
      if (last > first) await discardClusters(this, first, last - first, 'request', false);
      if (end > last) await writeZeroesRange(this, last, end - last, true);
    });
  }

  flush(): Promise<void> {
    return this.exclusive(() => this.#flushAll(true));
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      await this.#flushAll(false);
      if (this.#markedDirty) await this.markClean();
      if (this.syncOnClose) {
        await this.file.flush();
        if (this.hasDataFile) await this.dataFile.flush();
      }
      this.#closed = true;
    });
  }

  // ---- Beyond the BlockDevice interface ---------------------------------------

  /** Writes one cluster compressed (see writeCompressedCluster). */
  writeCompressed(
    guestOffset: number,
    cluster: Uint8Array,
    deflated?: PrecompressedCluster,
  ): Promise<void> {
    return this.exclusive(async () => {
      if (guestOffset + cluster.byteLength > this.image.size) {
        throw new BlockIoError(
          'OUT_OF_RANGE',
          `cannot write ${cluster.byteLength} bytes at ${guestOffset}: the disk is only ${this.image.size} bytes`,
          { path: this.file.name, offset: guestOffset },
        );
      }
      await this.prepareForWrite();
      await writeCompressedCluster(this, guestOffset, cluster, deflated);
    });
  }

  /** Rounds the file up to a whole sector, as qemu-img does after compressed writes. */
  finishCompressedWrites(): Promise<void> {
    return this.exclusive(async () => {
      await this.#flushAll(false);
      await alignFileEnd(this);
    });
  }

  /** Grows the virtual disk (see growImage), or with `shrink` shrinks it (see shrinkImage). */
  resize(newSize: number, options: ResizeOptions = {}): Promise<void> {
    return this.exclusive(async () => {
      if (newSize < this.image.size) {
        const where = { path: this.file.name, structure: 'resize' };
        if (!options.shrink) {
          throw new Qcow2Error(
            'UNSUPPORTED',
            `shrinking from ${this.image.size} to ${newSize} bytes drops what the guest had past the new end (${optionRemedy('shrink')} to do it)`,
            where,
          );
        }
        if ((options.preallocation ?? 'off') !== 'off') {
          throw new BlockIoError(
            'INVALID_ARGUMENT',
            'preallocation cannot be used when shrinking',
            where,
          );
        }
        await this.prepareForWrite();
        await shrinkImage(this, newSize);
        return;
      }
      const oldSize = this.image.size;
      const backing = this.image.backing;
      const zeroOverBacking = backing !== undefined && backing.size > oldSize && newSize > oldSize;
      if (zeroOverBacking && this.version < 3) {
        throw new Qcow2Error(
          'UNSUPPORTED',
          'a version 2 image cannot zero the new area over its larger backing file (qemu-img fails too)',
          { path: this.file.name, structure: 'resize' },
        );
      }
      await this.prepareForWrite();
      await growImage(this, newSize, options.preallocation ?? 'off');
      if (zeroOverBacking) await this.#zeroNewArea(oldSize, newSize);
    });
  }

  /**
   * QEMU's block layer has a truncate zero the new area when the backing file is
   * larger than the old size, or the backing file's data would show through there:
   * zero clusters from the first subcluster boundary on (qcow2_subcluster_zeroize),
   * then explicit zeros for the unaligned head.
   */
  async #zeroNewArea(oldSize: number, newSize: number): Promise<void> {
    const subcluster = this.geometry.subclusterSize;
    const zeroStart = Math.ceil(oldSize / subcluster) * subcluster;
    if (newSize > zeroStart) await writeZeroesRange(this, zeroStart, newSize - zeroStart, false);
    if (zeroStart > oldSize) {
      await writeGuestData(this, oldSize, Buffer.alloc(Math.min(zeroStart, newSize) - oldSize));
    }
  }

  /**
   * Takes an internal snapshot of the image as written so far (see
   * createSnapshotIn), between two writes of this open image: it runs in the
   * write queue, and flushes the caches before the table is rewritten, as
   * the by-path createSnapshot does after a fresh open.
   */
  createSnapshot(name: string, options: CreateSnapshotOptions = {}): Promise<SnapshotEntry> {
    return this.exclusive(async () => {
      await this.prepareForWrite();
      return snapshotEntry(await createSnapshotIn(this, name, options));
    });
  }

  // ---- For the modules in src/write, src/create, src/snapshot -----------------

  /** The snapshots as the writer keeps them (loaded from the table read at open). */
  snapshotRecords(): SnapshotRecord[] {
    this.#snapshots ??= snapshotRecords(this.image.metadata.snapshots, this.image.size);
    return this.#snapshots;
  }

  setSnapshotRecords(records: SnapshotRecord[]): void {
    this.#snapshots = records;
  }

  /** Writes dirty tables back and syncs (QEMU's bdrv_flush inside snapshot operations). */
  flushCaches(): Promise<void> {
    return this.#flushAll(true);
  }

  /** Grows the disk from inside another operation (snapshot apply). */
  growTo(size: number): Promise<void> {
    return growImage(this, size, 'off');
  }

  /**
   * Refuses up front when one more reference would overflow a refcount (narrow
   * refcounts): QEMU finds out half way through a snapshot and leaves leaks.
   */
  async checkRefcountHeadroom(): Promise<void> {
    const max = this.refcounts.maxRefcount;
    if (max >= 0xffff) return;
    const { geometry } = this;
    const clusterSize = geometry.clusterSize;
    const check = async (offset: number) => {
      if ((await this.refcounts.getRefcount(Math.floor(offset / clusterSize))) >= max) {
        throw new Qcow2Error(
          'UNSUPPORTED',
          `host cluster at 0x${offset.toString(16)} already has ${max} references, the most ${geometry.refcountBits}-bit refcounts hold; widen them (qemu-img amend -o refcount_bits=16) first`,
          { path: this.file.name, offset, structure: 'refcount block' },
        );
      }
    };
    for (let i = 0; i < this.l1.size; i++) {
      const l2Offset = this.l1.l2Offset(i, geometry, Number.MAX_SAFE_INTEGER);
      if (l2Offset === 0) continue;
      await check(l2Offset);
      for (let j = 0; j < geometry.l2Entries; j++) {
        const entry = readL2Entry(await this.l2Cache.get(l2Offset), j, geometry.extendedL2);
        const kind = clusterKind(entry, geometry.extendedL2, this.hasDataFile);
        if (kind === 'normal' || kind === 'zero-alloc')
          await check(entryOffset(entry.hi, entry.lo));
        else if (kind === 'compressed') {
          const { offset, length } = decodeCompressedDescriptor(
            entry.hi,
            entry.lo,
            geometry.clusterBits,
          );
          for (let at = offset - (offset % clusterSize); at < offset + length; at += clusterSize)
            await check(at);
        }
      }
    }
  }

  /**
   * Done once before the first change: refuse images whose refcounts are stale
   * (dirty bit) and clear the autoclear bits of features we do not keep
   * consistent (bitmaps, unknown ones), as the spec asks of such writers.
   */
  async prepareForWrite(): Promise<void> {
    if (this.#prepared) return;
    const header = this.state.header;
    if ((header.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) !== 0n) {
      throw new Qcow2Error(
        'MARKED_CORRUPT',
        'the image is marked corrupt; repair it before writing',
        {
          path: this.file.name,
          offset: HEADER_INCOMPATIBLE_OFFSET,
          structure: 'qcow2 header',
        },
      );
    }
    if ((header.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) !== 0n && !this.#markedDirty) {
      throw new Qcow2Error(
        'DIRTY',
        'the image was not closed cleanly (dirty bit set with lazy refcounts): its refcounts must be rebuilt before writing (qcow2 repair --rebuild-refcounts, or qemu-img check -r all)',
        { path: this.file.name, offset: HEADER_INCOMPATIBLE_OFFSET, structure: 'qcow2 header' },
      );
    }
    const keep = header.autoclearFeatures & QCOW2_AUTOCLEAR_DATA_FILE_RAW;
    if (header.autoclearFeatures !== keep && this.version >= 3) {
      header.autoclearFeatures = keep;
      await writeHeaderField(this.file, HEADER_AUTOCLEAR_OFFSET, 8, keep);
    }
    this.#prepared = true;
  }

  /** Before an L2 entry starts pointing at new clusters. */
  async beforeL2Update(): Promise<void> {
    if (this.lazyRefcounts && this.version >= 3) await this.markDirty();
    else this.refcounts.l2DependsOnRefblocks = true;
  }

  /** Sets the dirty bit (lazy refcounts: refcounts may lag behind until close). */
  async markDirty(): Promise<void> {
    const header = this.state.header;
    if ((header.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) !== 0n) return;
    await writeHeaderField(
      this.file,
      HEADER_INCOMPATIBLE_OFFSET,
      8,
      header.incompatibleFeatures | QCOW2_INCOMPAT_DIRTY,
    );
    await this.file.flush();
    header.incompatibleFeatures |= QCOW2_INCOMPAT_DIRTY;
    this.#markedDirty = true;
  }

  /** Writes everything back and clears the dirty bit with a full header rewrite (qcow2_mark_clean). */
  async markClean(): Promise<void> {
    const header = this.state.header;
    if ((header.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) === 0n) return;
    await this.#flushAll(true);
    header.incompatibleFeatures &= ~QCOW2_INCOMPAT_DIRTY;
    await rewriteHeader(this.file, this.state, this.geometry.clusterSize);
    this.#markedDirty = false;
  }

  async flushRefcountBlocks(): Promise<void> {
    await this.refblockCache.flush();
  }

  async flushL2Tables(): Promise<void> {
    await this.l2Cache.flush();
  }

  /** Makes a new active L1 table current (after growing or moving it). */
  installL1Table(l1: L1Table): void {
    this.image.replaceL1Table(l1);
    this.state.header.l1Size = l1.size;
    this.state.header.l1TableOffset = BigInt(l1.offset);
  }

  /**
   * What the guest sees at [offset, offset + length) before a write changes
   * the mapping, for copy-on-write. Beyond the virtual size (the tail of the
   * last cluster) it reads as zeros.
   */
  async readGuestForCow(offset: number, length: number): Promise<Buffer> {
    const bytes = Buffer.alloc(length);
    const inside = Math.max(0, Math.min(length, this.image.size - offset));
    if (inside > 0) await this.image.read(offset, bytes.subarray(0, inside));
    return bytes;
  }

  /** True when the guest range reads as zeros (zero clusters, or unallocated down the chain). */
  async readsAsZero(offset: number, length: number): Promise<boolean> {
    const end = Math.min(offset + length, this.image.size);
    if (end <= offset) return true;
    for await (const extent of this.image.extents({ offset, length: end - offset })) {
      if (extent.kind === 'data') return false;
    }
    return true;
  }

  subclusterKindAt(offset: number): Promise<SubclusterKind> {
    return subclusterKindAtOffset(this, offset);
  }

  /** Zeros a range of the data file (QEMU passes discards down; they read as zeros). */
  async zeroDataFileRange(offset: number, length: number): Promise<void> {
    const end = Math.min(offset + length, this.dataFile.size);
    for (let at = offset; at < end; ) {
      const chunk = Math.min(end - at, 1 << 20);
      await this.dataFile.write(at, zeroBuffer(chunk));
      at += chunk;
    }
  }

  /** Makes the data file (the qcow2 file itself without an external one) at least `size` bytes. */
  async extendDataFile(size: number): Promise<void> {
    if (this.dataFile.size >= size) return;
    await this.setDataFileSize(size);
  }

  async setDataFileSize(size: number): Promise<void> {
    if (!(this.dataFile instanceof FileDevice)) {
      throw new Qcow2Error('UNSUPPORTED', 'the data file cannot be resized', {
        path: this.dataFile.name,
      });
    }
    await this.dataFile.truncate(size);
  }

  async #flushAll(sync: boolean): Promise<void> {
    await this.l2Cache.flush();
    await this.refblockCache.flush();
    await this.l2Cache.flush();
    if (sync) {
      await this.file.flush();
      if (this.hasDataFile) await this.dataFile.flush();
    }
  }
}
