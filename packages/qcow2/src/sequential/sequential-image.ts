import { BaseBlockDevice, type BlockDevice, BlockIoError } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import {
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  QCOW_MAGIC,
  QCOW_MAX_L1_SIZE,
  QCOW_VERSION_2,
} from '../format/constants.js';
import { encodeHeader } from '../format/header.js';
import { standardEntry } from '../write/l2-entries.js';
import { refcountMetadataSize } from '../write/refcount-metadata-size.js';

export interface SequentialImageOptions {
  /** Guest size of the image in bytes. */
  virtualSize: number;
  /** Bytes per cluster: a power of two from 512 B to 2 MiB. */
  clusterSize: number;
}

export interface SequentialImageResult {
  /** Bytes of the finished QCOW2 file. */
  fileSize: number;
  /** Guest clusters that hold data. */
  dataClusters: number;
  l2Tables: number;
  refcountBlocks: number;
}

/** A refcount of 1 in a 16-bit big-endian refcount block entry. */
const REFCOUNT_ONE = Buffer.from([0, 1]);

/**
 * A new QCOW2 image (version 2, 16-bit refcounts, no snapshots) built in one
 * pass from writes in ascending guest order, the way e2fsprogs' e2image lays out
 * its -Q output: header, L1 table, then each L2 table's data clusters followed by
 * the L2 table, and the refcount table and blocks at the end. Nothing is ever
 * read back or rewritten except the header and L1 table at `finish()`, so the
 * cost is one write per run of data plus one per L2 table.
 *
 * A write-only block device over `file` (a new, empty file that reads as zeros,
 * such as `createOutputFile`'s): writes must start on a cluster boundary and
 * come in ascending order; a short last piece is padded with zeros. Bytes never
 * written read as zeros (unallocated clusters). Every cluster is referenced
 * once, so the image passes `qemu-img check` with no leaks.
 */
export class SequentialQcow2Image extends BaseBlockDevice {
  readonly clusterSize: number;
  readonly #file: BlockDevice;
  readonly #clusterBits: number;
  readonly #l2Entries: number;
  readonly #l1: Buffer;
  readonly #l1View: DataView;
  readonly #l1Clusters: number;
  /** The L2 table being filled, for guest L1 index #l2Index (-1: none yet). */
  readonly #l2: Buffer;
  readonly #l2View: DataView;
  #l2Index = -1;
  #l2Dirty = false;
  /** Next free host cluster. */
  #nextHostCluster: number;
  /** Guest offset below which no more writes are accepted. */
  #guestEnd = 0;
  #dataClusters = 0;
  #l2Tables = 0;
  #finished: SequentialImageResult | undefined;

  private constructor(file: BlockDevice, options: SequentialImageOptions, clusterBits: number) {
    super({
      name: file.name,
      size: options.virtualSize,
      readOnly: false,
      queueDepth: 1,
      alignment: { logical: options.clusterSize, optimal: 1 << 20 },
    });
    this.#file = file;
    this.clusterSize = options.clusterSize;
    this.#clusterBits = clusterBits;
    this.#l2Entries = options.clusterSize / 8;
    const l1Entries = Math.ceil(options.virtualSize / (this.#l2Entries * options.clusterSize));
    this.#l1 = Buffer.alloc(l1Entries * 8);
    this.#l1View = new DataView(this.#l1.buffer, this.#l1.byteOffset, this.#l1.byteLength);
    this.#l1Clusters = Math.ceil(this.#l1.byteLength / options.clusterSize);
    this.#l2 = Buffer.alloc(options.clusterSize);
    this.#l2View = new DataView(this.#l2.buffer, this.#l2.byteOffset, this.#l2.byteLength);
    this.#nextHostCluster = 1 + this.#l1Clusters;
  }

  /** Starts an image in `file`, which must be empty (or read as zeros). */
  static create(file: BlockDevice, options: SequentialImageOptions): SequentialQcow2Image {
    const { clusterSize, virtualSize } = options;
    const clusterBits = Math.log2(clusterSize);
    if (
      !Number.isInteger(clusterBits) ||
      clusterBits < MIN_CLUSTER_BITS ||
      clusterBits > MAX_CLUSTER_BITS
    ) {
      throw new Qcow2Error(
        'UNSUPPORTED',
        `cluster size ${clusterSize} is not a power of two from 512 B to 2 MiB`,
        { path: file.name },
      );
    }
    if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) {
      throw new BlockIoError('INVALID_ARGUMENT', `invalid virtual size ${virtualSize}`, {
        path: file.name,
      });
    }
    const l1Bytes = Math.ceil(virtualSize / ((clusterSize / 8) * clusterSize)) * 8;
    if (l1Bytes > QCOW_MAX_L1_SIZE) {
      throw new Qcow2Error(
        'TOO_LARGE',
        `a ${virtualSize}-byte image with ${clusterSize}-byte clusters needs a ${l1Bytes}-byte L1 table, over QEMU's 32 MiB limit`,
        { path: file.name, structure: 'L1 table' },
      );
    }
    return new SequentialQcow2Image(file, options, clusterBits);
  }

  /** Reads as zeros where nothing was written: copy() may skip zero blocks. */
  get knownZeroed(): boolean {
    return true;
  }

  protected readAt(): Promise<void> {
    return Promise.reject(
      new Qcow2Error('UNSUPPORTED', 'a sequentially built image cannot be read while it is built', {
        path: this.name,
      }),
    );
  }

  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    this.#checkAscending(offset, true);
    const clusterSize = this.clusterSize;
    const coverage = this.#l2Entries * clusterSize;
    let done = 0;
    while (done < data.byteLength) {
      const guest = offset + done;
      const l1Index = Math.floor(guest / coverage);
      if (l1Index !== this.#l2Index) await this.#startL2(l1Index);
      // One write per piece within an L2 table's coverage: its clusters get
      // consecutive host clusters.
      const piece = Math.min(data.byteLength - done, (l1Index + 1) * coverage - guest);
      const clusters = Math.ceil(piece / clusterSize);
      const firstHost = this.#nextHostCluster;
      let l2Entry = (guest / clusterSize) % this.#l2Entries;
      for (let index = 0; index < clusters; index++) {
        this.#setEntry(this.#l2View, l2Entry++, (firstHost + index) * clusterSize);
      }
      this.#l2Dirty = true;
      const bytes = data.subarray(done, done + piece);
      // A short last piece needs no padding: the L2 table written after it
      // extends the file, which reads as zeros in between.
      await this.#file.write(firstHost * clusterSize, bytes);
      this.#nextHostCluster += clusters;
      this.#dataClusters += clusters;
      done += piece;
      this.#guestEnd = guest + clusters * clusterSize;
    }
  }

  /** Zeros need no clusters: accepted wherever nothing has been written yet. */
  protected override writeZeroesAt(offset: number): Promise<void> {
    this.#checkAscending(offset, false);
    return Promise.resolve();
  }

  protected override discardAt(offset: number): Promise<void> {
    return this.writeZeroesAt(offset);
  }

  /**
   * Writes the last L2 table, the refcount table and blocks, the L1 table and
   * the header. The file is complete afterwards (not flushed: the caller's
   * output commit does that); further writes are refused.
   */
  async finish(): Promise<SequentialImageResult> {
    this.checkWritable();
    if (this.#finished) return this.#finished;
    await this.#flushL2();
    const clusterSize = this.clusterSize;
    // Every cluster is used once, the refcount structures included, which follow the
    // rest: the same fixed point QEMU finds for 16-bit refcounts.
    const used = this.#nextHostCluster;
    const sizes = refcountMetadataSize(used, clusterSize, 4, false);
    const layout = {
      tableClusters: sizes.tableClusters,
      blocks: sizes.refblocks,
      totalClusters: used + sizes.tableClusters + sizes.refblocks,
    };
    const tableStart = this.#nextHostCluster;
    const blocksStart = tableStart + layout.tableClusters;
    const table = Buffer.alloc(layout.tableClusters * clusterSize);
    for (let block = 0; block < layout.blocks; block++) {
      table.writeBigUInt64BE(BigInt((blocksStart + block) * clusterSize), block * 8);
    }
    await this.#file.write(tableStart * clusterSize, table);
    const refcountsPerBlock = clusterSize / 2;
    const block = Buffer.alloc(clusterSize);
    for (let index = 0; index < layout.blocks; index++) {
      const first = index * refcountsPerBlock;
      const count = Math.min(refcountsPerBlock, layout.totalClusters - first);
      // 16-bit big-endian ones, then zeros past the last cluster.
      block.fill(REFCOUNT_ONE, 0, count * 2);
      block.fill(0, count * 2);
      await this.#file.write((blocksStart + index) * clusterSize, block);
    }
    if (this.#l1.byteLength > 0) await this.#file.write(clusterSize, this.#l1);
    await this.#file.write(0, this.#header(tableStart, layout.tableClusters));
    this.#nextHostCluster = layout.totalClusters;
    this.#finished = {
      fileSize: layout.totalClusters * clusterSize,
      dataClusters: this.#dataClusters,
      l2Tables: this.#l2Tables,
      refcountBlocks: layout.blocks,
    };
    return this.#finished;
  }

  #header(refcountTableCluster: number, refcountTableClusters: number): Uint8Array {
    return encodeHeader({
      magic: QCOW_MAGIC,
      version: QCOW_VERSION_2,
      backingFileOffset: 0n,
      backingFileSize: 0,
      clusterBits: this.#clusterBits,
      size: BigInt(this.size),
      cryptMethod: 0,
      l1Size: this.#l1.byteLength / 8,
      l1TableOffset: BigInt(this.clusterSize),
      refcountTableOffset: BigInt(refcountTableCluster * this.clusterSize),
      refcountTableClusters,
      nbSnapshots: 0,
      snapshotsOffset: 0n,
      incompatibleFeatures: 0n,
      compatibleFeatures: 0n,
      autoclearFeatures: 0n,
      refcountOrder: 4,
      headerLength: 72,
      compressionType: 0,
      unknownHeaderBytes: new Uint8Array(0),
    });
  }

  #checkAscending(offset: number, aligned: boolean): void {
    if (this.#finished) {
      throw new BlockIoError('INVALID_ARGUMENT', 'the image is finished', { path: this.name });
    }
    if (offset < this.#guestEnd || (aligned && offset % this.clusterSize !== 0)) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `a sequential image takes writes at cluster boundaries in ascending order: got offset ${offset} after data up to ${this.#guestEnd}`,
        { path: this.name, offset },
      );
    }
  }

  async #startL2(l1Index: number): Promise<void> {
    await this.#flushL2();
    this.#l2Index = l1Index;
    this.#l2.fill(0);
  }

  /** Appends the current L2 table after its data and points the L1 entry at it. */
  async #flushL2(): Promise<void> {
    if (!this.#l2Dirty) return;
    const host = this.#nextHostCluster * this.clusterSize;
    await this.#file.write(host, this.#l2);
    this.#setEntry(this.#l1View, this.#l2Index, host);
    this.#nextHostCluster++;
    this.#l2Tables++;
    this.#l2Dirty = false;
  }

  /** A table entry: host offset with QCOW_OFLAG_COPIED (every refcount is one). */
  #setEntry(view: DataView, index: number, hostOffset: number): void {
    const { hi, lo } = standardEntry(hostOffset, { copied: true });
    view.setUint32(index * 8, hi, false);
    view.setUint32(index * 8 + 4, lo, false);
  }
}
