import { type BlockDevice, zeroBuffer } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_REFTABLE_SIZE } from '../format/constants.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import {
  copyRefcount,
  maxRefcount,
  REFCOUNT_SATURATED,
  readRefcount,
  readRefcountExact,
  refcountTableEntryOffset,
  writeRefcount,
} from '../format/table-entries.js';
import { refcountMetadataSize } from './refcount-metadata-size.js';
import { type DiscardType, PASS_DISCARD, type TableStore } from './table-store.js';

/** Returned when a new refcount block took clusters the caller may have picked: search again. */
export const AGAIN = Symbol('allocate again');
export type Again = typeof AGAIN;

/** QEMU's QCOW_MAX_CLUSTER_OFFSET: host offsets live in bits 9..55. */
const MAX_CLUSTER_OFFSET = 2 ** 56 - 1;

export interface RefcountAllocatorOptions {
  /** The qcow2 file (writable; writes past the end grow it). */
  file: BlockDevice;
  geometry: Qcow2Geometry;
  /** The refcount table as on disk (refcount_table_clusters clusters). */
  refcountTable: Buffer;
  refcountTableOffset: number;
  refblockCache: TableStore;
  /** Tables of freed clusters are dropped from here too, as QEMU does. */
  l2Cache: TableStore;
  /** Persists a moved refcount table in the header (refcount_table_offset/clusters). */
  writeRefcountTableLocation(offset: number, clusters: number): Promise<void>;
  /** Runs before refcount structures are grown, so dirty L2 tables go out first. */
  flushL2Tables(): Promise<void>;
}

interface DiscardRegion {
  offset: number;
  length: number;
}

/**
 * Host cluster allocation and refcount updates, step for step as QEMU's
 * qcow2-refcount.c does them, so that images we write have their clusters in
 * the same places as images qemu-img writes: the same free-cluster search
 * (`freeClusterIndex` starts at 0 on every open and only moves down when a
 * refcount drops to 0), refcount blocks placed where they describe themselves,
 * the refcount table grown into a self-describing area at the end, and
 * allocations restarted (AGAIN) whenever a new refcount block may have taken
 * the clusters the caller picked.
 *
 * The refcount table is held in memory (QEMU limits it to 8 MiB); refcount
 * blocks go through a bounded cache.
 */
export class RefcountAllocator {
  readonly file: BlockDevice;
  readonly geometry: Qcow2Geometry;
  readonly refblockCache: TableStore;
  readonly l2Cache: TableStore;
  /** Lowest cluster index that may be free (QEMU's free_cluster_index). */
  freeClusterIndex = 0;
  /** Where the next compressed cluster may go (QEMU's free_byte_offset); 0 = none. */
  freeByteOffset = 0;
  /** Collect discards instead of issuing them at once (QEMU's cache_discards). */
  cacheDiscards = false;
  /** Set when refcounts were increased: L2 tables must not reach disk before them. */
  l2DependsOnRefblocks = false;
  /** Set when refcounts were decreased: refcount blocks must not reach disk before L2 tables. */
  refblocksDependOnL2 = false;
  #table: Buffer;
  #tableOffset: number;
  #maxTableIndex = 0;
  readonly #entries: number;
  readonly #clusterSize: number;
  readonly #order: number;
  readonly #max: number;
  readonly #options: RefcountAllocatorOptions;
  #discards: DiscardRegion[] = [];
  /** Set while allocBytes takes references for compressed data. */
  #packing = false;

  constructor(options: RefcountAllocatorOptions) {
    this.#options = options;
    this.file = options.file;
    this.geometry = options.geometry;
    this.refblockCache = options.refblockCache;
    this.l2Cache = options.l2Cache;
    this.#table = options.refcountTable;
    this.#tableOffset = options.refcountTableOffset;
    this.#entries = options.geometry.refcountBlockEntries;
    this.#clusterSize = options.geometry.clusterSize;
    this.#order = options.geometry.refcountOrder;
    this.#max = maxRefcount(this.#order);
    this.#updateMaxTableIndex();
  }

  get refcountTableOffset(): number {
    return this.#tableOffset;
  }

  /** Entries in the refcount table. */
  get refcountTableSize(): number {
    return this.#table.byteLength / 8;
  }

  get maxRefcount(): number {
    return this.#max;
  }

  /** Host offset of refcount block `index` (0 = none). */
  refcountTableEntry(index: number): number {
    if (index >= this.refcountTableSize) return 0;
    return refcountTableEntryOffset(
      this.#table.readUInt32BE(index * 8),
      this.#table.readUInt32BE(index * 8 + 4),
    );
  }

  /** The refcount of host cluster `clusterIndex`. */
  async getRefcount(clusterIndex: number): Promise<number> {
    const tableIndex = Math.floor(clusterIndex / this.#entries);
    const blockOffset = this.refcountTableEntry(tableIndex);
    if (blockOffset === 0) return 0;
    this.#checkBlockOffset(blockOffset, tableIndex);
    const block =
      this.refblockCache.peek(blockOffset) ?? (await this.refblockCache.get(blockOffset));
    return readRefcount(block, clusterIndex % this.#entries, this.#order);
  }

  /**
   * Finds `size` bytes of free clusters from `freeClusterIndex` on without
   * taking a reference (QEMU's alloc_clusters_noref).
   */
  async allocClustersNoref(size: number, max = MAX_CLUSTER_OFFSET): Promise<number> {
    if (this.cacheDiscards) await this.processDiscards(true);
    const count = Math.ceil(size / this.#clusterSize);
    for (let found = 0; found < count; ) {
      const index = this.freeClusterIndex++;
      found = (await this.getRefcount(index)) === 0 ? found + 1 : 0;
    }
    if (this.freeClusterIndex > 0 && (this.freeClusterIndex - 1) * this.#clusterSize > max) {
      throw new Qcow2Error('TOO_LARGE', 'the image file would exceed the largest host offset', {
        path: this.file.name,
        structure: 'cluster allocation',
      });
    }
    return (this.freeClusterIndex - count) * this.#clusterSize;
  }

  /** Allocates `size` bytes of contiguous clusters with refcount 1 (qcow2_alloc_clusters). */
  async allocClusters(size: number): Promise<number> {
    for (;;) {
      const offset = await this.allocClustersNoref(size);
      if ((await this.updateRefcount(offset, size, 1, false, 'never')) !== AGAIN) return offset;
    }
  }

  /**
   * Allocates up to `count` clusters starting exactly at `offset`, stopping at
   * the first one in use; returns how many (qcow2_alloc_clusters_at).
   */
  async allocClustersAt(offset: number, count: number): Promise<number> {
    if (count === 0) return 0;
    for (;;) {
      const first = offset / this.#clusterSize;
      let free = 0;
      while (free < count && (await this.getRefcount(first + free)) === 0) free++;
      const result = await this.updateRefcount(offset, free * this.#clusterSize, 1, false, 'never');
      if (result !== AGAIN) return free;
    }
  }

  /**
   * Allocates `size` bytes (at most one cluster) for compressed data, packed
   * after the previous compressed cluster when it fits (qcow2_alloc_bytes).
   * Every cluster the bytes touch gets one more reference.
   */
  async allocBytes(size: number): Promise<number> {
    this.#packing = true;
    try {
      return await this.#allocBytes(size);
    } finally {
      this.#packing = false;
    }
  }

  async #allocBytes(size: number): Promise<number> {
    const clusterSize = this.#clusterSize;
    let offset = this.freeByteOffset;
    if (offset !== 0 && (await this.getRefcount(Math.floor(offset / clusterSize))) === this.#max) {
      offset = 0;
    }
    let freeInCluster = clusterSize - (offset % clusterSize);
    for (;;) {
      if (offset === 0 || freeInCluster < size) {
        const newCluster = await this.allocClustersNoref(clusterSize, 2 ** 56 - 1);
        if (newCluster === 0) throw this.#corrupt('refusing to put compressed data at offset 0');
        if (offset === 0 || Math.ceil(offset / clusterSize) * clusterSize !== newCluster) {
          offset = newCluster;
          freeInCluster = clusterSize;
        } else {
          freeInCluster += clusterSize;
        }
      }
      const result = await this.updateRefcount(offset, size, 1, false, 'never');
      if (result !== AGAIN) break;
      offset = 0;
    }
    this.l2DependsOnRefblocks = true;
    this.freeByteOffset = (offset + size) % clusterSize === 0 ? 0 : offset + size;
    return offset;
  }

  /** Drops one reference from every cluster in the range (qcow2_free_clusters). */
  async freeClusters(offset: number, size: number, type: DiscardType): Promise<void> {
    await this.updateRefcount(offset, size, 1, true, type);
  }

  async updateClusterRefcount(
    clusterIndex: number,
    addend: number,
    decrease: boolean,
    type: DiscardType,
  ): Promise<void> {
    const result = await this.updateRefcount(
      clusterIndex * this.#clusterSize,
      1,
      addend,
      decrease,
      type,
    );
    // A single existing cluster: its refcount block exists, nothing to restart.
    if (result === AGAIN) {
      await this.updateClusterRefcount(clusterIndex, addend, decrease, type);
    }
  }

  /**
   * Adds (or with `decrease`, subtracts) `addend` to the refcount of every
   * cluster touched by [offset, offset + length), allocating refcount blocks as
   * needed. Returns AGAIN when that allocation means the caller must search for
   * free clusters again; the partial update has then been undone.
   */
  async updateRefcount(
    offset: number,
    length: number,
    addend: number,
    decrease: boolean,
    type: DiscardType,
  ): Promise<undefined | Again> {
    if (length <= 0) return undefined;
    if (decrease) this.refblocksDependOnL2 = true;
    const clusterSize = this.#clusterSize;
    const start = offset - (offset % clusterSize);
    const lastByte = offset + length - 1;
    const last = lastByte - (lastByte % clusterSize);
    let oldTableIndex = -1;
    let blockOffset = 0;
    let clusterOffset = start;
    let failure: unknown;
    let again = false;
    try {
      for (; clusterOffset <= last; clusterOffset += clusterSize) {
        const clusterIndex = clusterOffset / clusterSize;
        const tableIndex = Math.floor(clusterIndex / this.#entries);
        if (tableIndex !== oldTableIndex) {
          const block = await this.#allocRefcountBlock(clusterIndex);
          if (block === AGAIN) {
            if (this.freeClusterIndex > start / clusterSize) {
              this.freeClusterIndex = start / clusterSize;
            }
            again = true;
            break;
          }
          blockOffset = block;
        }
        oldTableIndex = tableIndex;
        const block =
          this.refblockCache.peek(blockOffset) ?? (await this.refblockCache.get(blockOffset));
        const blockIndex = clusterIndex % this.#entries;
        let refcount = readRefcount(block, blockIndex, this.#order);
        if (refcount === REFCOUNT_SATURATED) {
          // A 64-bit refcount of 2^53 or more (a damaged image): exact arithmetic, never rounded.
          this.#updateHugeRefcount(block, blockIndex, addend, decrease, clusterIndex);
          this.refblockCache.markDirty(blockOffset);
          continue;
        }
        if (decrease ? refcount < addend : refcount + addend > this.#max) {
          throw new Qcow2Error(
            decrease ? 'CORRUPT' : 'UNSUPPORTED',
            decrease
              ? `refcount of host cluster ${clusterIndex} would drop below 0 (it is ${refcount})`
              : `refcount of host cluster ${clusterIndex} would exceed ${this.#max}, the most ${this.geometry.refcountBits}-bit refcounts can hold`,
            { path: this.file.name, offset: clusterOffset, structure: 'refcount block' },
          );
        }
        refcount = decrease ? refcount - addend : refcount + addend;
        if (refcount === 0 && clusterIndex < this.freeClusterIndex) {
          this.freeClusterIndex = clusterIndex;
        }
        if (!decrease && refcount === addend) this.#taken(clusterIndex);
        writeRefcount(block, blockIndex, this.#order, refcount);
        this.refblockCache.markDirty(blockOffset);
        if (refcount === 0) {
          // QEMU looks for cached tables at the start of the range only.
          if (this.refblockCache.peek(offset)) {
            oldTableIndex = -1;
            await this.refblockCache.discard(offset);
          }
          if (this.l2Cache.peek(offset)) await this.l2Cache.discard(offset);
          if (PASS_DISCARD[type]) this.#queueDiscard(clusterOffset, clusterSize);
        }
      }
    } catch (error) {
      failure = error;
    }
    const failed = again || failure !== undefined;
    if (!this.cacheDiscards) await this.processDiscards(!failed);
    if (failed) {
      // Undo what was done so far, as QEMU does, so a restart starts clean.
      await this.updateRefcount(offset, clusterOffset - offset, addend, !decrease, 'never');
      if (failure !== undefined) throw failure;
      return AGAIN;
    }
    return undefined;
  }

  /** Issues (zero-fills) the collected discards; with `issue` false just forgets them. */
  async processDiscards(issue: boolean): Promise<void> {
    const regions = this.#discards;
    this.#discards = [];
    if (!issue) return;
    for (const region of regions) {
      // A discard never extends the file; QEMU punches a hole, which reads as zeros.
      const end = Math.min(region.offset + region.length, this.file.size);
      if (end > region.offset) await this.#writeZeroes(region.offset, end - region.offset);
    }
  }

  /**
   * Creates self-describing refcount structures starting at `startOffset`
   * (which must be the end of what is in use): a new refcount table and the
   * refcount blocks that cover everything up to it, plus `additionalClusters`.
   * Returns the offset just past them (qcow2_refcount_area).
   */
  async refcountArea(
    startOffset: number,
    additionalClusters: number,
    exactSize: boolean,
    newRefblockIndex: number,
    newRefblockOffset: number,
  ): Promise<number> {
    const clusterSize = this.#clusterSize;
    const { refblocks: totalRefblocks } = refcountMetadataSize(
      startOffset / clusterSize + additionalClusters,
      clusterSize,
      this.#order,
      !exactSize,
    );
    if (totalRefblocks > QCOW_MAX_REFTABLE_SIZE) throw this.#tooLarge();
    const areaTableIndex = Math.floor(startOffset / clusterSize / this.#entries);
    let tableSize = exactSize ? totalRefblocks : totalRefblocks + Math.ceil(totalRefblocks / 2);
    const perCluster = clusterSize / 8;
    tableSize = Math.ceil(tableSize / perCluster) * perCluster;
    const tableClusters = (tableSize * 8) / clusterSize;
    if (tableSize > QCOW_MAX_REFTABLE_SIZE) throw this.#tooLarge();

    const newTable = Buffer.alloc(tableSize * 8);
    const keep = tableSize > this.#maxTableIndex ? this.#maxTableIndex + 1 : tableSize;
    this.#table.copy(newTable, 0, 0, Math.min(keep * 8, this.#table.byteLength));
    const entry = (i: number) =>
      refcountTableEntryOffset(newTable.readUInt32BE(i * 8), newTable.readUInt32BE(i * 8 + 4));
    if (newRefblockOffset !== 0)
      newTable.writeBigUInt64BE(BigInt(newRefblockOffset), newRefblockIndex * 8);

    let additional = 0;
    for (let i = areaTableIndex; i < totalRefblocks; i++) if (entry(i) === 0) additional++;
    const tableOffset = startOffset + additional * clusterSize;
    const endOffset = tableOffset + tableClusters * clusterSize;

    let blockOffset = startOffset;
    for (let i = areaTableIndex; i < totalRefblocks; i++) {
      let refblockAt = entry(i);
      let block: Buffer;
      if (refblockAt !== 0) {
        block = await this.refblockCache.get(refblockAt);
      } else {
        refblockAt = blockOffset;
        block = Buffer.alloc(clusterSize);
        await this.refblockCache.put(refblockAt, block, { dirty: true });
        newTable.writeBigUInt64BE(BigInt(refblockAt), i * 8);
        blockOffset += clusterSize;
      }
      const firstCovered = i * this.#entries * clusterSize;
      if (firstCovered < endOffset) {
        let j = firstCovered < startOffset ? (startOffset - firstCovered) / clusterSize : 0;
        const endIndex = Math.min((endOffset - firstCovered) / clusterSize, this.#entries);
        const current =
          this.refblockCache.peek(refblockAt) ?? (await this.refblockCache.get(refblockAt));
        for (; j < endIndex; j++) {
          writeRefcount(current, j, this.#order, 1);
          this.#taken(firstCovered / clusterSize + j);
        }
        this.refblockCache.markDirty(refblockAt);
      }
    }
    await this.refblockCache.flush();
    await this.file.write(tableOffset, newTable);
    await this.#options.writeRefcountTableLocation(tableOffset, tableClusters);

    const oldOffset = this.#tableOffset;
    const oldBytes = this.#table.byteLength;
    this.#table = newTable;
    this.#tableOffset = tableOffset;
    this.#updateMaxTableIndex();
    await this.freeClusters(oldOffset, oldBytes, 'other');
    return endOffset;
  }

  /** The offset of the refcount block covering `clusterIndex`, allocating it (and growing the table) if needed. */
  async #allocRefcountBlock(clusterIndex: number): Promise<number | Again> {
    const clusterSize = this.#clusterSize;
    const tableIndex = Math.floor(clusterIndex / this.#entries);
    if (tableIndex < this.refcountTableSize) {
      const existing = this.refcountTableEntry(tableIndex);
      if (existing !== 0) {
        this.#checkBlockOffset(existing, tableIndex);
        return existing;
      }
    }
    // Writing the refcount table may make L2 tables reachable: they go first.
    await this.#options.flushL2Tables();
    const newBlock = await this.allocClustersNoref(clusterSize);
    if (newBlock === 0) throw this.#corrupt('refusing to put a refcount block at offset 0');
    const coverage = this.geometry.refcountBlockCoverage;
    if (Math.floor(newBlock / coverage) === Math.floor((clusterIndex * clusterSize) / coverage)) {
      // The block describes itself.
      const block = Buffer.alloc(clusterSize);
      writeRefcount(block, (newBlock / clusterSize) % this.#entries, this.#order, 1);
      this.#taken(newBlock / clusterSize);
      await this.refblockCache.put(newBlock, block, { dirty: true });
    } else {
      // Described by another block; this recurses at most twice.
      const result = await this.updateRefcount(newBlock, clusterSize, 1, false, 'never');
      if (result === AGAIN) return AGAIN;
      await this.refblockCache.flush();
      await this.refblockCache.put(newBlock, Buffer.alloc(clusterSize), { dirty: true });
    }
    await this.refblockCache.flush();

    if (tableIndex < this.refcountTableSize) {
      const entry = Buffer.alloc(8);
      entry.writeBigUInt64BE(BigInt(newBlock));
      await this.file.write(this.#tableOffset + tableIndex * 8, entry);
      entry.copy(this.#table, tableIndex * 8);
      this.#maxTableIndex = Math.max(this.#maxTableIndex, tableIndex);
      return AGAIN;
    }

    // The table is full: grow it into a new self-describing area at the end.
    const blocksUsed = Math.ceil(
      Math.max(clusterIndex + 1, newBlock / clusterSize + 1) / this.#entries,
    );
    const metaOffset = blocksUsed * this.#entries * clusterSize;
    await this.refcountArea(metaOffset, 0, false, tableIndex, newBlock);
    return AGAIN;
  }

  /**
   * Drops the refcount blocks that count nothing any more (QEMU's
   * qcow2_shrink_reftable(), after a shrink): a block counts nothing when it is
   * all zeros, not counting its own reference if it describes itself. The
   * table is rewritten whole, then each dropped block loses its reference and
   * its cluster is discarded.
   */
  async shrinkTable(): Promise<void> {
    const clusterSize = this.#clusterSize;
    const next = Buffer.from(this.#table);
    const dropped: number[] = [];
    for (let index = 0; index < this.refcountTableSize; index++) {
      const blockOffset = this.refcountTableEntry(index);
      if (blockOffset === 0) {
        next.fill(0, index * 8, index * 8 + 8);
        continue;
      }
      this.#checkBlockOffset(blockOffset, index);
      const block =
        this.refblockCache.peek(blockOffset) ?? (await this.refblockCache.get(blockOffset));
      const own = blockOffset / clusterSize;
      let unused: boolean;
      if (Math.floor(own / this.#entries) === index) {
        const ownIndex = own % this.#entries;
        const saved = Buffer.alloc(8);
        copyRefcount(block, ownIndex, saved, 0, this.#order);
        writeRefcount(block, ownIndex, this.#order, 0);
        unused = isAllZero(block);
        copyRefcount(saved, 0, block, ownIndex, this.#order);
      } else {
        unused = isAllZero(block);
      }
      if (unused) {
        next.fill(0, index * 8, index * 8 + 8);
        dropped.push(index);
      }
    }
    await this.file.write(this.#tableOffset, next);
    await this.file.flush();
    for (const index of dropped) {
      await this.#discardRefcountBlock(this.refcountTableEntry(index));
      this.#table.fill(0, index * 8, index * 8 + 8);
    }
    this.#updateMaxTableIndex();
    if (!this.cacheDiscards) await this.processDiscards(true);
  }

  /** `updateRefcount` on one refcount too large for a number: bigint, exact, 64 bits at most. */
  #updateHugeRefcount(
    block: Uint8Array,
    blockIndex: number,
    addend: number,
    decrease: boolean,
    clusterIndex: number,
  ): void {
    const exact = readRefcountExact(block, blockIndex, this.#order);
    const next = decrease ? exact - BigInt(addend) : exact + BigInt(addend);
    if (next >= 1n << 64n) {
      throw new Qcow2Error(
        'UNSUPPORTED',
        `refcount of host cluster ${clusterIndex} would exceed 2^64 - 1 (it is ${exact})`,
        {
          path: this.file.name,
          offset: clusterIndex * this.#clusterSize,
          structure: 'refcount block',
        },
      );
    }
    writeRefcount(block, blockIndex, this.#order, next);
  }

  /** The last host cluster with a reference, below `fileSize` (qcow2_get_last_cluster). */
  async lastUsedCluster(fileSize: number): Promise<number> {
    for (let index = Math.ceil(fileSize / this.#clusterSize) - 1; index >= 0; index--) {
      if ((await this.getRefcount(index)) > 0) return index;
    }
    throw this.#corrupt('there are no references in the refcount table');
  }

  /** A dropped refcount block loses its one reference (qcow2_discard_refcount_block). */
  async #discardRefcountBlock(offset: number): Promise<void> {
    const clusterIndex = offset / this.#clusterSize;
    const tableIndex = Math.floor(clusterIndex / this.#entries);
    const blockOffset = this.refcountTableEntry(tableIndex);
    if (blockOffset === 0) {
      throw this.#corrupt(`refcount block 0x${offset.toString(16)} is not counted by any`);
    }
    const block =
      this.refblockCache.peek(blockOffset) ?? (await this.refblockCache.get(blockOffset));
    const blockIndex = clusterIndex % this.#entries;
    const refcount = readRefcount(block, blockIndex, this.#order);
    if (refcount !== 1) {
      throw this.#corrupt(
        `refcount block 0x${offset.toString(16)} has refcount ${refcount}, expected 1`,
      );
    }
    writeRefcount(block, blockIndex, this.#order, 0);
    this.refblockCache.markDirty(blockOffset);
    if (clusterIndex < this.freeClusterIndex) this.freeClusterIndex = clusterIndex;
    if (this.refblockCache.peek(offset)) await this.refblockCache.discard(offset);
    this.#queueDiscard(offset, this.#clusterSize);
  }

  /**
   * A free host cluster got its first reference. When that is the cluster compressed
   * data was being packed into (freed since: its compressed clusters were overwritten,
   * zeroed or discarded) and the reference is not more packing, it is now a data
   * cluster or a table, and packing must not go on inside it. QEMU's
   * qcow2_alloc_bytes() does go on (qemu-io: write -c, write -z, a 512-byte write
   * beside, write -c, then a write over that data; qemu-img check reports the
   * COPIED/refcount mismatch and the compressed cluster no longer inflates). Where
   * the freed cluster was not taken, packing goes on in it as QEMU's does.
   */
  #taken(clusterIndex: number): void {
    if (this.#packing || this.freeByteOffset === 0) return;
    if (Math.floor(this.freeByteOffset / this.#clusterSize) === clusterIndex) {
      this.freeByteOffset = 0;
    }
  }

  #queueDiscard(offset: number, length: number): void {
    // Merge with an adjacent region, as QEMU does (regions never overlap).
    let merged: DiscardRegion | undefined;
    for (const region of this.#discards) {
      if (region.offset + region.length === offset) {
        region.length += length;
        merged = region;
        break;
      }
      if (offset + length === region.offset) {
        region.offset = offset;
        region.length += length;
        merged = region;
        break;
      }
    }
    if (!merged) {
      this.#discards.push({ offset, length });
      return;
    }
    const target = merged;
    this.#discards = this.#discards.filter((region) => {
      if (region === target) return true;
      if (region.offset === target.offset + target.length) {
        target.length += region.length;
        return false;
      }
      if (region.offset + region.length === target.offset) {
        target.offset = region.offset;
        target.length += region.length;
        return false;
      }
      return true;
    });
  }

  async #writeZeroes(offset: number, length: number): Promise<void> {
    for (let done = 0; done < length; ) {
      const chunk = Math.min(length - done, 1 << 20);
      await this.file.write(offset + done, zeroBuffer(chunk));
      done += chunk;
    }
  }

  #updateMaxTableIndex(): void {
    let index = this.refcountTableSize - 1;
    while (index > 0 && this.refcountTableEntry(index) === 0) index--;
    this.#maxTableIndex = Math.max(index, 0);
  }

  #checkBlockOffset(offset: number, tableIndex: number): void {
    if (offset % this.#clusterSize !== 0) {
      throw new Qcow2Error(
        'CORRUPT',
        `refcount block offset 0x${offset.toString(16)} is not cluster aligned (refcount table index ${tableIndex})`,
        {
          path: this.file.name,
          offset: this.#tableOffset + tableIndex * 8,
          structure: 'refcount table',
        },
      );
    }
  }

  #corrupt(message: string): Qcow2Error {
    return new Qcow2Error('CORRUPT', message, {
      path: this.file.name,
      structure: 'cluster allocation',
    });
  }

  #tooLarge(): Qcow2Error {
    return new Qcow2Error('TOO_LARGE', "the refcount table would exceed QEMU's 8 MiB limit", {
      path: this.file.name,
      structure: 'refcount table',
    });
  }
}

function isAllZero(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}
