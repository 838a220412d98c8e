import { type BlockDevice, throwIfAborted } from '@x/blockio';
import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import type { ReferencesBeyondEnd } from './beyond-end.js';
import { describeL2Entry, type L2EntryDescription } from './describe-entry.js';
import type { HeaderFacts } from './header-facts.js';
import type { MetadataMap } from './metadata-map.js';
import type { RefcountTally } from './refcount-tally.js';
import type { CheckFinding, FindingCollector, FindingKind } from './report.js';
import { entryHex, type StoredRefcounts } from './stored-refcounts.js';

const TWO_32 = 0x1_0000_0000;
const HI_COPIED = 0x80000000;
const HI_COMPRESSED = 0x40000000;
/** L1 entry reserved bits: 56–62 in the high word, 0–8 in the low word. */
const L1_HI_RESERVED = 0x7f000000;
const L1_LO_RESERVED = 0x1ff;
/** Standard L2 descriptor reserved bits: 56–61 (high word), 1–8 (low word). */
const L2_HI_RESERVED = 0x3f000000;
const L2_LO_RESERVED = 0x1fe;

/** Whose L1 table a walk covers. */
export interface WalkOwner {
  /** OWNER_ACTIVE (-1) or the snapshot's index. */
  owner: number;
  /** "active" or the snapshot id. */
  id: string;
  /** "active" or "snapshot 1 (s1)". */
  label: string;
  active: boolean;
  l1Offset: number;
  /** Entries of the L1 table to walk. */
  l1Entries: number;
  /** Report entry-level findings for these tables (the `--snapshot` scope). */
  report: boolean;
}

/** One L2 entry, for `dump` and `--mode dump`. */
export interface L2EntryEvent extends L2EntryDescription {
  owner: WalkOwner;
  l1Index: number;
  l2Offset: number;
  entryIndex: number;
  /** Byte offset of the entry in the file. */
  entryOffset: number;
  virtualOffset: number;
}

/** Allocation figures of the active tables (qemu-img's BlockFragInfo plus what preallocation detection needs). */
export interface ActiveStats {
  allocated: number;
  fragmented: number;
  compressed: number;
  /** Guest clusters inside the disk that map to nothing (unallocated or plain zero). */
  unmapped: number;
  /** Guest clusters inside the disk with a host cluster (normal or preallocated zero). */
  mapped: number;
  /** Active data clusters no snapshot references (copy-on-write growth). */
  exclusive: number;
}

export interface WalkEnvironment {
  file: BlockDevice;
  facts: HeaderFacts;
  /** Every reference (what qemu-img calls the in-memory refcount table). */
  tally: RefcountTally;
  /** Active normal/zero-alloc data clusters only, saturating: finds reused clusters. */
  activeData: RefcountTally;
  metadata: MetadataMap;
  /** Clusters where guest data and metadata overlap (repair must not touch their refcounts). */
  aliased: RefcountTally;
  /**
   * Active data clusters mapped by an entry with COPIED set / clear (saturating). The
   * refcount comparison checks them against the stored refcounts block by block, so the
   * walk never waits for refcount blocks.
   */
  copiedSet: RefcountTally;
  copiedClear: RefcountTally;
  stored: StoredRefcounts;
  /** Clusters referenced at or past the end of the file (not counted; repair must not allocate there). */
  beyondEnd?: ReferencesBeyondEnd | undefined;
  findings: FindingCollector;
  stats: ActiveStats;
  /** Count data clusters in refcounts (false with an external data file). */
  countData: boolean;
  signal?: AbortSignal | undefined;
  /** Called (and awaited) after each L2 table: progress, and flushing dump output with backpressure. */
  onTable?: (() => void | Promise<void>) | undefined;
  /** Every L2 entry (makes the walk slow: dump mode only). */
  onEntry?: ((event: L2EntryEvent) => void) | undefined;
  /** Every L1 entry that is not zero (dump mode). */
  onL1Entry?:
    | ((owner: WalkOwner, index: number, entry: string, l2Offset: number) => void)
    | undefined;
}

const RUN_NONE = 0;
const RUN_EMPTY = 1; // unallocated or plain zero: step 0
const RUN_DATA = 2; // normal or preallocated zero: step one cluster

/**
 * Walks L1 and L2 tables and counts every reference into the tally, checking
 * each entry on the way. L2 tables are streamed through one buffer; entries
 * are grouped into runs (consecutive entries that differ only by one cluster
 * of host offset), so a run of 8192 contiguous clusters costs two comparisons
 * per entry and one tally update.
 */
export class TableWalker {
  readonly env: WalkEnvironment;
  readonly #clusterSize: number;
  readonly #clusterBits: number;
  readonly #entrySize: number;
  readonly #entries: number;
  readonly #extended: boolean;
  readonly #fileSize: number;
  /** L2 tables being read ahead, each with its view. */
  readonly #buffers: Buffer[] = [];
  readonly #views: DataView[] = [];
  #view: DataView;

  // The table being scanned.
  #owner!: WalkOwner;
  #l1Index = 0;
  #l2Offset = 0;
  #guestBase = 0;
  #prevDataEnd = 0;

  // The current run.
  #runKind = RUN_NONE;
  #runStart = 0;
  #runLength = 0;
  #runHi = 0;
  #runLo = 0;
  #expectHi = -1;
  #expectLo = -1;
  #expectB0 = 0;
  #expectB1 = 0;

  readonly #onCollision: (cluster: number) => void;
  #collisionFirstCluster = 0;
  #collisionEntry = 0;

  constructor(env: WalkEnvironment) {
    this.env = env;
    const { geometry } = env.facts;
    this.#clusterSize = geometry.clusterSize;
    this.#clusterBits = geometry.clusterBits;
    this.#entrySize = geometry.l2EntrySize;
    this.#entries = geometry.l2Entries;
    this.#extended = geometry.extendedL2;
    this.#fileSize = env.facts.fileSize;
    // Read ahead as many tables as the device keeps requests in flight (one for a file
    // read synchronously), within 512 KiB of buffers.
    const depth = Math.max(
      1,
      Math.min(env.file.queueDepth ?? 4, Math.floor((512 << 10) / this.#clusterSize)),
    );
    for (let k = 0; k < depth; k++) {
      const buffer = Buffer.alloc(this.#clusterSize);
      this.#buffers.push(buffer);
      this.#views.push(new DataView(buffer.buffer, buffer.byteOffset, this.#clusterSize));
    }
    this.#view = this.#views[0] as DataView;
    this.#onCollision = (cluster) => this.#reportReuse(cluster);
  }

  /** Counts a byte range of metadata in the tally, as qemu-img does (and reports ranges past the end). */
  countRegion(
    offset: number,
    length: number,
    structure: string,
    kind: FindingKind = 'l1-table',
  ): void {
    if (length <= 0) return;
    const { env } = this;
    if (offset + length - this.#fileSize >= this.#clusterSize) {
      const first = Math.floor(offset / this.#clusterSize);
      env.beyondEnd?.add(first, Math.floor((offset + length - 1) / this.#clusterSize) - first + 1);
      env.findings.add({
        kind,
        message: `${structure} at 0x${offset.toString(16)} (${length} bytes) reaches past the end of the file by a cluster or more; not counted`,
        structure,
        hostOffset: offset,
      });
      return;
    }
    const first = Math.floor(offset / this.#clusterSize);
    const last = Math.floor((offset + length - 1) / this.#clusterSize);
    env.tally.addRange(first, last - first + 1);
  }

  /** Walks one L1 table and every L2 table it references. */
  async walkL1(owner: WalkOwner): Promise<void> {
    const { env } = this;
    this.#owner = owner;
    if (owner.l1Entries === 0) return;
    this.countRegion(owner.l1Offset, owner.l1Entries * 8, `${owner.label} L1 table`);
    const chunkEntries = 8192;
    const l1Chunk = Buffer.alloc(Math.min(owner.l1Entries, chunkEntries) * 8);
    const tables: number[] = [];
    for (let base = 0; base < owner.l1Entries; base += chunkEntries) {
      const count = Math.min(chunkEntries, owner.l1Entries - base);
      const bytes = l1Chunk.subarray(0, count * 8);
      await readClipped(env.file, owner.l1Offset + base * 8, bytes);
      tables.length = 0;
      for (let i = 0; i < count; i++) {
        const hi = bytes.readUInt32BE(i * 8);
        const lo = bytes.readUInt32BE(i * 8 + 4);
        if (hi === 0 && lo === 0) continue;
        if (await this.#checkL1Entry(base + i, hi, lo)) tables.push(base + i, hi, lo);
      }
      await this.#scanTables(tables);
    }
  }

  /** Checks an L1 entry; true when its L2 table is to be read. */
  async #checkL1Entry(index: number, hi: number, lo: number): Promise<boolean> {
    const { env } = this;
    const owner = this.#owner;
    const l2Offset = entryOffset(hi, lo);
    const entryAt = owner.l1Offset + index * 8;
    env.onL1Entry?.(owner, index, entryHex(hi, lo), l2Offset);
    const where = (): Partial<CheckFinding> => ({
      structure: `${owner.label} L1 table`,
      owner: owner.id,
      tableIndex: index,
      entryIndex: index,
      entryOffset: entryAt,
      entry: entryHex(hi, lo),
      hostOffset: l2Offset,
      virtualOffset: index * env.facts.geometry.l2Coverage,
    });
    if ((hi & L1_HI_RESERVED) !== 0 || (lo & L1_LO_RESERVED) !== 0) {
      this.#entryFinding('l1-entry', 'L1 entry has reserved bits set', where);
    }
    if (l2Offset === 0) {
      this.#entryFinding('l1-entry', 'L1 entry has flags but no L2 table offset', where);
      return false;
    }
    if (l2Offset >= this.#fileSize) {
      env.beyondEnd?.add(Math.floor(l2Offset / this.#clusterSize));
      this.#entryFinding(
        'l1-entry',
        `L2 table offset 0x${l2Offset.toString(16)} lies past the end of the file; L1 entry corrupted`,
        where,
      );
      return false;
    }
    this.countRegion(l2Offset, this.#clusterSize, 'L2 table');
    if (l2Offset % this.#clusterSize !== 0) {
      this.#entryFinding(
        'l1-entry',
        `l2_offset=0x${l2Offset.toString(16)}: Table is not cluster aligned; L1 entry corrupted`,
        where,
      );
    }
    if (owner.active) {
      const refcount = await env.stored.exact(Math.floor(l2Offset / this.#clusterSize));
      const copied = (hi & HI_COPIED) !== 0;
      if (refcount !== undefined && (refcount === 1) !== copied && owner.report) {
        env.findings.add({
          kind: 'copied',
          message: `OFLAG_COPIED L2 cluster: l1_index=${index} l1_entry=${entryHex(hi, lo)} refcount=${refcount}`,
          ...where(),
          cluster: Math.floor(l2Offset / this.#clusterSize),
          refcount,
        } as CheckFinding);
      }
    }
    return true;
  }

  /**
   * Reads and scans the L2 tables of `tables` (triples of L1 index, entry halves),
   * keeping a few reads in flight so the disk (or page cache) works while we scan.
   */
  async #scanTables(tables: number[]): Promise<void> {
    const { env } = this;
    const count = tables.length / 3;
    const depth = Math.min(this.#buffers.length, count);
    const reads: Array<Promise<void>> = [];
    const start = (k: number) => {
      const offset = entryOffset(tables[k * 3 + 1] as number, tables[k * 3 + 2] as number);
      return readClipped(env.file, offset, this.#buffers[k % depth] as Buffer);
    };
    for (let k = 0; k < depth; k++) reads.push(start(k));
    for (let k = 0; k < count; k++) {
      throwIfAborted(env.signal);
      await reads[k % depth];
      const index = tables[k * 3] as number;
      this.#view = this.#views[k % depth] as DataView;
      this.#l1Index = index;
      this.#l2Offset = entryOffset(tables[k * 3 + 1] as number, tables[k * 3 + 2] as number);
      this.#guestBase = index * env.facts.geometry.l2Coverage;
      this.#scanTable();
      if (k + depth < count) reads[k % depth] = start(k + depth);
      await env.onTable?.();
    }
  }

  #scanTable(): void {
    const view = this.#view;
    const entries = this.#entries;
    const size = this.#entrySize;
    const extended = this.#extended;
    const fast = this.env.onEntry === undefined;
    this.#prevDataEnd = 0;
    this.#runKind = RUN_NONE;
    this.#expectHi = -1;
    let step = 0;
    for (let i = 0; i < entries; i++) {
      const at = i * size;
      const hi = view.getUint32(at, false);
      const lo = view.getUint32(at + 4, false);
      if (fast && hi === this.#expectHi && lo === this.#expectLo) {
        if (
          !extended ||
          (view.getUint32(at + 8, false) === this.#expectB0 &&
            view.getUint32(at + 12, false) === this.#expectB1)
        ) {
          this.#runLength++;
          if (step !== 0) {
            let next = this.#expectLo + step;
            if (next >= TWO_32) {
              next -= TWO_32;
              this.#expectHi = (this.#expectHi + 1) >>> 0;
            }
            this.#expectLo = next;
          }
          continue;
        }
      }
      this.#flushRun();
      const b0 = extended ? view.getUint32(at + 8, false) : 0;
      const b1 = extended ? view.getUint32(at + 12, false) : 0;
      step = this.#startEntry(i, hi, lo, b0, b1);
    }
    this.#flushRun();
  }

  /**
   * Checks one entry that does not continue the current run; starts a new run
   * when later entries may continue it. Returns the run's step (0 or a cluster).
   */
  #startEntry(index: number, hi: number, lo: number, b0: number, b1: number): number {
    const { env } = this;
    const extended = this.#extended;
    this.#runKind = RUN_NONE;
    this.#expectHi = -1;
    if (env.onEntry) this.#emitEntry(index, hi, lo, b0, b1);
    if ((hi & HI_COMPRESSED) !== 0) {
      this.#compressedEntry(index, hi, lo, b0, b1);
      return 0;
    }
    const offset = entryOffset(hi, lo);
    // QEMU ignores bit 0 of an extended L2 entry: the bitmap says what reads as zero.
    const zero = !extended && (lo & 1) !== 0;
    let clean = true;
    const where = () => this.#where(index, hi, lo, offset);
    if ((hi & L2_HI_RESERVED) !== 0 || (lo & L2_LO_RESERVED) !== 0) {
      this.#entryFinding('l2-entry', 'L2 entry has reserved bits set', where);
      clean = false;
    }
    if (zero && env.facts.version < 3) {
      this.#entryFinding('v2-zero-flag', 'zero flag set in a version 2 image', where);
      clean = false;
    }
    if (extended) {
      if ((lo & 1) !== 0) {
        this.#entryFinding(
          'ignored',
          'bit 0 is set in an extended L2 entry (the spec says it must be clear; QEMU ignores it)',
          where,
        );
      }
      // b0 = bits 32–63 of the bitmap ("reads as zero"), b1 = bits 0–31 ("allocated").
      if ((b0 & b1) !== 0) {
        this.#entryFinding(
          'extended-l2-bitmap',
          `subclusters 0x${((b0 & b1) >>> 0).toString(16)} are marked both allocated and zero`,
          where,
        );
        clean = false;
      }
      if (offset === 0 && b1 !== 0 && !env.facts.dataFile) {
        this.#entryFinding(
          'extended-l2-bitmap',
          'subclusters are marked allocated but the entry has no host cluster',
          where,
        );
        clean = false;
      }
    }
    // With an external data file, host offset 0 is guest cluster 0's data (COPIED marks it allocated).
    const dataAtZero = env.facts.dataFile && (hi & HI_COPIED) !== 0 && !zero;
    if (offset === 0 && !dataAtZero) {
      if ((hi & HI_COPIED) !== 0 && !env.facts.dataFile) {
        // QEMU reads such an entry as unallocated and its check says nothing.
        this.#entryFinding(
          'ignored',
          'COPIED set on an entry without a host cluster (read as unallocated, as QEMU does)',
          where,
        );
      }
      if (!clean) {
        this.#countEmpty(index, 1);
        return 0;
      }
      this.#beginRun(RUN_EMPTY, index, hi, lo, b0, b1, 0);
      return 0;
    }
    if (offset % this.#clusterSize !== 0) {
      // QEMU counts the unaligned range (which spans two clusters); so do we, to match its figures.
      this.#entryFinding(
        'l2-entry',
        `offset=0x${offset.toString(16)}: ${zero ? 'Preallocated zero' : 'Data'} cluster is not properly aligned; L2 entry corrupted`,
        where,
      );
      this.#dataRun(index, 1, hi, lo, true);
      return 0;
    }
    if (!clean) {
      this.#dataRun(index, 1, hi, lo, false);
      return 0;
    }
    this.#beginRun(RUN_DATA, index, hi, lo, b0, b1, this.#clusterSize);
    return this.#clusterSize;
  }

  #beginRun(
    kind: number,
    index: number,
    hi: number,
    lo: number,
    b0: number,
    b1: number,
    step: number,
  ): void {
    this.#runKind = kind;
    this.#runStart = index;
    this.#runLength = 1;
    this.#runHi = hi;
    this.#runLo = lo;
    this.#expectB0 = b0;
    this.#expectB1 = b1;
    let next = lo + step;
    let nextHi = hi;
    if (next >= TWO_32) {
      next -= TWO_32;
      nextHi = (hi + 1) >>> 0;
    }
    this.#expectHi = nextHi;
    this.#expectLo = next;
  }

  #flushRun(): void {
    const kind = this.#runKind;
    if (kind === RUN_NONE) return;
    this.#runKind = RUN_NONE;
    this.#expectHi = -1;
    if (kind === RUN_EMPTY) {
      this.#countEmpty(this.#runStart, this.#runLength);
      return;
    }
    this.#dataRun(this.#runStart, this.#runLength, this.#runHi, this.#runLo, false);
  }

  #countEmpty(index: number, length: number): void {
    if (!this.#owner.active || length === 0) return;
    this.env.stats.unmapped += this.#insideDisk(index, length);
  }

  /** Entries of [index, index + length) whose guest offset lies inside the virtual disk. */
  #insideDisk(index: number, length: number): number {
    const virtualClusters = Math.ceil(this.env.facts.virtualSize / this.#clusterSize);
    const firstGuest = this.#guestBase / this.#clusterSize + index;
    return Math.max(0, Math.min(length, virtualClusters - firstGuest));
  }

  /** `length` consecutive data entries starting at `index`, the first being (hi, lo). */
  #dataRun(index: number, length: number, hi: number, lo: number, unaligned: boolean): void {
    const { env } = this;
    const owner = this.#owner;
    const clusterSize = this.#clusterSize;
    const hostStart = entryOffset(hi, lo);
    const firstCluster = Math.floor(hostStart / clusterSize);
    if (owner.active) {
      const stats = env.stats;
      stats.allocated += length;
      stats.mapped += this.#insideDisk(index, length);
      if (this.#prevDataEnd !== 0 && hostStart !== this.#prevDataEnd) stats.fragmented++;
      this.#prevDataEnd = hostStart + length * clusterSize;
    }
    if (env.facts.dataFile) return; // data lives in the external file: no refcounts, no overlap with metadata.

    // Entries whose cluster starts at or past the end of the file are not counted (qemu-img's rule).
    let counted = length;
    if (hostStart + length * clusterSize > this.#fileSize) {
      counted = Math.max(
        0,
        Math.min(length, Math.ceil((this.#fileSize - hostStart) / clusterSize)),
      );
      env.beyondEnd?.add(firstCluster + counted, length - counted + (unaligned ? 1 : 0));
      for (let k = counted; k < length; k++) {
        const offset = hostStart + k * clusterSize;
        this.#entryFinding(
          'l2-entry',
          `host offset 0x${offset.toString(16)} lies past the end of the file; L2 entry corrupted`,
          () => this.#where(index + k, hi, lo, offset),
        );
      }
    }
    if (counted === 0) return;
    const clusters = unaligned ? 2 : counted;
    const collided = env.tally.addRange(firstCluster, clusters);
    if (owner.active) {
      env.stats.exclusive += Math.max(0, counted - collided);
      if (!unaligned) {
        this.#collisionFirstCluster = firstCluster;
        this.#collisionEntry = index;
        env.activeData.addRange(
          firstCluster,
          counted,
          owner.report ? this.#onCollision : undefined,
        );
      }
      if (owner.report) {
        ((hi & HI_COPIED) !== 0 ? env.copiedSet : env.copiedClear).addRange(
          firstCluster,
          unaligned ? 1 : counted,
        );
      }
    }
    if (env.metadata.touches(firstCluster, clusters)) {
      this.#reportMetadataOverlap(firstCluster, clusters, index, hi, lo, unaligned);
    }
  }

  #compressedEntry(index: number, hi: number, lo: number, b0: number, b1: number): void {
    const { env } = this;
    const owner = this.#owner;
    const descriptor = decodeCompressedDescriptor(hi, lo, this.#clusterBits);
    const start = descriptor.offset - (descriptor.offset % 512);
    const length = descriptor.sectors * 512;
    const where = () => this.#where(index, hi, lo, descriptor.offset);
    if ((hi & HI_COPIED) !== 0 && owner.active) {
      this.#entryFinding('copied', 'copied flag must never be set for compressed clusters', where);
    }
    if (this.#extended && (b0 !== 0 || b1 !== 0)) {
      this.#entryFinding(
        'extended-l2-bitmap',
        'compressed cluster has a non-zero subcluster bitmap',
        where,
      );
    }
    if (owner.active) {
      env.stats.allocated++;
      env.stats.compressed++;
      env.stats.fragmented++;
      env.stats.mapped += this.#insideDisk(index, 1);
    }
    if (env.facts.dataFile) {
      this.#entryFinding(
        'l2-entry',
        'compressed cluster in an image with an external data file',
        where,
      );
      return;
    }
    if (start + length - this.#fileSize >= this.#clusterSize) {
      const first = Math.floor(start / this.#clusterSize);
      env.beyondEnd?.add(first, Math.floor((start + length - 1) / this.#clusterSize) - first + 1);
      this.#entryFinding(
        'l2-entry',
        `compressed data at 0x${descriptor.offset.toString(16)} (${length} bytes) reaches past the end of the file`,
        where,
      );
      return;
    }
    const first = Math.floor(start / this.#clusterSize);
    const clusters = Math.floor((start + length - 1) / this.#clusterSize) - first + 1;
    const collided = env.tally.addRange(first, clusters);
    if (owner.active && collided === 0) env.stats.exclusive++;
    if (env.metadata.touches(first, clusters)) {
      this.#reportMetadataOverlap(first, clusters, index, hi, lo, true);
    }
  }

  #reportReuse(cluster: number): void {
    const index = this.#collisionEntry + (cluster - this.#collisionFirstCluster);
    const view = this.#view;
    const at = index * this.#entrySize;
    const hi = view.getUint32(at, false);
    const lo = view.getUint32(at + 4, false);
    this.#entryFinding(
      'reused-cluster',
      `host cluster ${cluster} is also mapped by another active L2 entry`,
      () => ({ ...this.#where(index, hi, lo, cluster * this.#clusterSize), cluster }),
    );
  }

  #reportMetadataOverlap(
    first: number,
    clusters: number,
    index: number,
    hi: number,
    lo: number,
    single: boolean,
  ): void {
    const { env } = this;
    for (let k = 0; k < clusters; k++) {
      const cluster = first + k;
      if (!env.metadata.touches(cluster, 1)) continue;
      env.aliased.add(cluster);
      const entryIndex = single ? index : index + k;
      for (const extent of env.metadata.at(cluster)) {
        env.findings.add({
          kind: 'overlap',
          message: `${this.#owner.label} guest data maps host cluster ${cluster}, which holds the ${extent.kind}`,
          ...this.#where(entryIndex, hi, lo, cluster * this.#clusterSize),
          cluster,
        } as CheckFinding);
      }
    }
  }

  #where(index: number, hi: number, lo: number, hostOffset: number): Partial<CheckFinding> {
    return {
      structure: 'L2 table',
      owner: this.#owner.id,
      tableIndex: this.#l1Index,
      entryIndex: index,
      entryOffset: this.#l2Offset + index * this.#entrySize,
      entry: entryHex(hi, lo),
      hostOffset,
      virtualOffset: this.#guestBase + index * this.#clusterSize,
    };
  }

  /** Adds an entry-level finding if the owner is in scope (details built lazily). */
  #entryFinding(kind: FindingKind, message: string, where: () => Partial<CheckFinding>): void {
    if (!this.#owner.report) return;
    const { findings } = this.env;
    if (!findings.wantsDetails(kind)) {
      findings.addCount(kind, 1);
      return;
    }
    findings.add({ kind, message, structure: 'L2 table', ...where() } as CheckFinding);
  }

  #emitEntry(index: number, hi: number, lo: number, b0: number, b1: number): void {
    if (hi === 0 && lo === 0 && b0 === 0 && b1 === 0) return;
    const description = this.#extended
      ? describeL2Entry(hi, lo, this.#clusterBits, b0, b1)
      : describeL2Entry(hi, lo, this.#clusterBits);
    this.env.onEntry?.({
      owner: this.#owner,
      l1Index: this.#l1Index,
      l2Offset: this.#l2Offset,
      entryIndex: index,
      entryOffset: this.#l2Offset + index * this.#entrySize,
      virtualOffset: this.#guestBase + index * this.#clusterSize,
      ...description,
    });
  }
}

/** Reads `into.byteLength` bytes at `offset`, zero-filling whatever lies past the end of the file. */
export async function readClipped(
  file: BlockDevice,
  offset: number,
  into: Uint8Array,
): Promise<void> {
  const inFile = Math.max(0, Math.min(into.byteLength, file.size - offset));
  if (inFile < into.byteLength) into.fill(0, inFile);
  if (inFile > 0) await file.read(offset, into.subarray(0, inFile));
}
