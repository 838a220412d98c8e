import type { BlockDevice } from '@x/blockio';
import type { Qcow2Geometry } from '../format/geometry.js';
import {
  REFCOUNT_SATURATED,
  readRefcount,
  readRefcountValue,
  refcountTableEntryOffset,
  writeRefcount,
} from '../format/table-entries.js';
import type { HeaderFacts } from './header-facts.js';
import type { FindingCollector } from './report.js';

/** Refcount table entry states besides a valid block offset. */
export const REFBLOCK_ABSENT = -1;
export const REFBLOCK_INVALID = -2;

/** Bytes of refcount blocks kept in the cache (at least one block). */
const CACHE_BYTES = 256 << 10;

/**
 * The refcounts stored in the image: the refcount table (validated entry by
 * entry) and a small cache of refcount blocks. Unreadable refcounts are
 * `undefined`, never guessed.
 */
export class StoredRefcounts {
  readonly file: BlockDevice;
  readonly geometry: Qcow2Geometry;
  /** Entries in the refcount table. */
  readonly entries: number;
  /** Per entry: block offset, REFBLOCK_ABSENT or REFBLOCK_INVALID. */
  readonly #offsets: Float64Array;
  readonly #cache = new Map<number, Uint8Array>();
  readonly #cacheLimit: number;
  readonly #templates = new Map<number, Uint8Array>();

  constructor(file: BlockDevice, geometry: Qcow2Geometry, offsets: Float64Array) {
    this.file = file;
    this.geometry = geometry;
    this.entries = offsets.length;
    this.#offsets = offsets;
    this.#cacheLimit = Math.max(1, Math.floor(CACHE_BYTES / geometry.clusterSize));
  }

  /** Reads and validates the refcount table; reports bad entries as findings. */
  static async load(
    file: BlockDevice,
    facts: HeaderFacts,
    findings: FindingCollector,
  ): Promise<StoredRefcounts> {
    const { geometry } = facts;
    const placement = facts.refcountTable;
    if (!placement.readable) return new StoredRefcounts(file, geometry, new Float64Array(0));
    const entries = placement.length / 8;
    const raw = Buffer.alloc(placement.length);
    const inFile = Math.max(0, Math.min(placement.length, facts.fileSize - placement.offset));
    await file.read(placement.offset, raw.subarray(0, inFile));
    const offsets = new Float64Array(entries);
    for (let index = 0; index < entries; index++) {
      const hi = raw.readUInt32BE(index * 8);
      const lo = raw.readUInt32BE(index * 8 + 4);
      const offset = refcountTableEntryOffset(hi, lo);
      const where = {
        structure: 'refcount table',
        entryIndex: index,
        tableIndex: index,
        entryOffset: placement.offset + index * 8,
        entry: entryHex(hi, lo),
      };
      if (hi === 0 && lo === 0) {
        offsets[index] = REFBLOCK_ABSENT;
      } else if ((lo & 0x1ff) !== 0 || !geometry.isClusterAligned(offset)) {
        findings.add({
          kind: 'refcount-table-entry',
          message: `refcount block ${index} is not cluster aligned; refcount table entry corrupted`,
          hostOffset: offset,
          ...where,
        });
        offsets[index] = REFBLOCK_INVALID;
      } else if (offset >= facts.fileSize) {
        findings.add({
          kind: 'refcount-table-entry',
          message: `refcount block ${index} at 0x${offset.toString(16)} is outside the image`,
          hostOffset: offset,
          ...where,
        });
        offsets[index] = REFBLOCK_INVALID;
      } else if (offset === 0) {
        offsets[index] = REFBLOCK_ABSENT;
      } else {
        offsets[index] = offset;
      }
    }
    return new StoredRefcounts(file, geometry, offsets);
  }

  blockOffset(index: number): number {
    return index < this.entries ? (this.#offsets[index] as number) : REFBLOCK_ABSENT;
  }

  /** A refcount block (cached); undefined when the table has no valid entry for it. */
  async block(index: number): Promise<Uint8Array | undefined> {
    const offset = this.blockOffset(index);
    if (offset < 0) return undefined;
    const cached = this.#cache.get(index);
    if (cached !== undefined) {
      this.#cache.delete(index);
      this.#cache.set(index, cached);
      return cached;
    }
    let block: Uint8Array;
    if (this.#cache.size >= this.#cacheLimit) {
      const oldest = this.#cache.keys().next().value as number;
      block = this.#cache.get(oldest) as Uint8Array;
      this.#cache.delete(oldest);
    } else {
      block = Buffer.alloc(this.geometry.clusterSize);
    }
    await this.readBlock(offset, block);
    this.#cache.set(index, block);
    return block;
  }

  /** Reads the block at `offset` into `into`, zero-filling whatever lies past the end of the file. */
  async readBlock(offset: number, into: Uint8Array): Promise<void> {
    const inFile = Math.max(0, Math.min(into.byteLength, this.file.size - offset));
    if (inFile < into.byteLength) into.fill(0, inFile);
    if (inFile > 0) await this.file.read(offset, into.subarray(0, inFile));
  }

  /** Forgets cached blocks (after repair wrote some). */
  invalidate(): void {
    this.#cache.clear();
  }

  /**
   * The stored refcount of `cluster`: 0 when no refcount block covers it,
   * undefined when the covering refcount table entry is invalid. A 64-bit
   * refcount of 2^53 or more is REFCOUNT_SATURATED (`exact` has its value).
   */
  async get(cluster: number): Promise<number | undefined> {
    const index = this.geometry.refcountTableIndex(cluster);
    const offset = this.blockOffset(index);
    if (offset === REFBLOCK_ABSENT) return 0;
    if (offset === REFBLOCK_INVALID) return undefined;
    const block = (await this.block(index)) as Uint8Array;
    return readRefcount(
      block,
      this.geometry.refcountBlockIndex(cluster),
      this.geometry.refcountOrder,
    );
  }

  /** `get`, exact also for 64-bit refcounts above 2^53 - 1 (then a bigint): for reports. */
  async exact(cluster: number): Promise<number | bigint | undefined> {
    const value = await this.get(cluster);
    if (value === undefined || value < REFCOUNT_SATURATED) return value;
    const block = (await this.block(this.geometry.refcountTableIndex(cluster))) as Uint8Array;
    return readRefcountValue(
      block,
      this.geometry.refcountBlockIndex(cluster),
      this.geometry.refcountOrder,
    );
  }

  /**
   * `get` without waiting: the refcount when its block is cached (or absent,
   * or invalid: undefined), null when the block would have to be read.
   */
  peek(cluster: number): number | undefined | null {
    const index = this.geometry.refcountTableIndex(cluster);
    const offset = this.blockOffset(index);
    if (offset === REFBLOCK_ABSENT) return 0;
    if (offset === REFBLOCK_INVALID) return undefined;
    const block = this.#cache.get(index);
    if (block === undefined) return null;
    return readRefcount(
      block,
      this.geometry.refcountBlockIndex(cluster),
      this.geometry.refcountOrder,
    );
  }

  /**
   * Calls `visit` with each refcount block piece covering [first, first + count):
   * the block (undefined: no block, all zero; null: invalid entry), and the
   * range of entries in it.
   */
  async forEachBlockPiece(
    first: number,
    count: number,
    visit: (
      block: Uint8Array | undefined | null,
      firstEntry: number,
      entries: number,
      firstCluster: number,
    ) => void,
  ): Promise<void> {
    const perBlock = this.geometry.refcountBlockEntries;
    while (count > 0) {
      const index = Math.floor(first / perBlock);
      const entry = first - index * perBlock;
      const length = Math.min(count, perBlock - entry);
      const offset = this.blockOffset(index);
      const block = offset === REFBLOCK_INVALID ? null : await this.block(index);
      visit(block, entry, length, first);
      first += length;
      count -= length;
    }
  }

  /** A cluster-sized block whose every entry is `value` (cached). */
  template(value: number): Uint8Array {
    let template = this.#templates.get(value);
    if (template === undefined) {
      template = Buffer.alloc(this.geometry.clusterSize);
      const order = this.geometry.refcountOrder;
      if (value !== 0) {
        for (let index = 0; index < this.geometry.refcountBlockEntries; index++) {
          writeRefcount(template, index, order, value);
        }
      }
      if (this.#templates.size > 8) this.#templates.clear();
      this.#templates.set(value, template);
    }
    return template;
  }

  /**
   * True when entries [first, first + count) of `block` all equal `value`. Always
   * false for REFCOUNT_SATURATED, which stands for many values: callers then
   * compare entry by entry.
   */
  rangeEquals(block: Uint8Array, first: number, count: number, value: number): boolean {
    if (value >= REFCOUNT_SATURATED) return false;
    const order = this.geometry.refcountOrder;
    const template = this.template(value);
    if (order >= 3) {
      const width = 1 << (order - 3);
      return bytesEqual(block, first * width, template, count * width);
    }
    const perByte = 8 >> order;
    let index = first;
    const end = first + count;
    while (index < end && index % perByte !== 0) {
      if (readRefcount(block, index, order) !== value) return false;
      index++;
    }
    const wholeBytes = Math.floor((end - index) / perByte);
    if (wholeBytes > 0) {
      if (!bytesEqual(block, index / perByte, template, wholeBytes)) return false;
      index += wholeBytes * perByte;
    }
    for (; index < end; index++) {
      if (readRefcount(block, index, order) !== value) return false;
    }
    return true;
  }
}

function bytesEqual(
  block: Uint8Array,
  start: number,
  template: Uint8Array,
  length: number,
): boolean {
  return Buffer.from(block.buffer, block.byteOffset + start, length).equals(
    Buffer.from(template.buffer, template.byteOffset, length),
  );
}

export function entryHex(hi: number, lo: number): string {
  return `0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;
}
