import { Cursor } from './cursor.js';
import { kvError, type Location } from './errors.js';

/**
 * A decoded block (LevelDB table/block.cc, RocksDB table/block_based/block.cc): the
 * entries with their prefix-compressed keys, then the restart array (fixed32 offsets
 * of entries whose key is stored whole), then the restart count. RocksDB data blocks
 * with a hash index (kDataBlockBinaryAndHash) pack a flag into the count's top bit
 * and keep the hash buckets and their count between the restart array and the count.
 */
export class Block {
  readonly restartsOffset: number;
  readonly restartCount: number;

  constructor(
    readonly data: Buffer,
    readonly where: Location,
    /** RocksDB index blocks of format_version ≥ 4 store no value length (see entries). */
    readonly valueDeltaEncoded = false,
  ) {
    const fail = (message: string) => {
      throw kvError('BAD_BLOCK', message, { ...where, offset: where.offset + data.length });
    };
    if (data.length < 4) fail(`a ${data.length}-byte block cannot hold its restart count`);
    let packed = data.readUInt32LE(data.length - 4);
    let end = data.length - 4;
    if (packed >= 0x80000000) {
      // DataBlockFooter: top bit = hash index present; the uint16 bucket count before it.
      packed -= 0x80000000;
      if (end < 2) fail('a hash-indexed block too short for its bucket count');
      const buckets = data.readUInt16LE(end - 2);
      end -= 2 + buckets;
    }
    if (packed === 0 && data.length > 4) fail('a non-empty block with no restart point');
    const restartsOffset = end - packed * 4;
    if (restartsOffset < 0)
      fail(`${packed} restart points do not fit in a ${data.length}-byte block`);
    this.restartCount = packed;
    this.restartsOffset = restartsOffset;
  }

  restartPoint(index: number): number {
    const offset = this.data.readUInt32LE(this.restartsOffset + index * 4);
    if (offset >= this.restartsOffset && !(offset === 0 && this.restartsOffset === 0)) {
      throw kvError('BAD_BLOCK', `restart point ${index} (${offset}) lies outside the entries`, {
        ...this.where,
        offset: this.where.offset + this.restartsOffset + index * 4,
      });
    }
    return offset;
  }

  /** The key stored whole at restart point `index`. */
  restartKey(index: number): Buffer {
    const cursor = new Cursor(
      this.data,
      this.where,
      'BAD_BLOCK',
      this.restartPoint(index),
      this.restartsOffset,
    );
    const shared = cursor.varint32('shared key length');
    const nonShared = cursor.varint32('unshared key length');
    if (!this.valueDeltaEncoded) cursor.varint32('value length');
    if (shared !== 0) cursor.fail('an entry at a restart point shares key bytes');
    return Buffer.from(cursor.take(nonShared, 'key'));
  }

  /**
   * The index of the last restart point whose key is below `target` by `compare`
   * (0 if none): where a scan for the first key ≥ target starts.
   */
  seekRestart(target: Buffer, compare: (key: Buffer, target: Buffer) => number): number {
    let low = 0;
    let high = this.restartCount - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (compare(this.restartKey(middle), target) < 0) low = middle;
      else high = middle - 1;
    }
    return Math.max(0, low);
  }

  /**
   * Entries from restart point `fromRestart` on: the whole key (a fresh Buffer), and
   * a cursor positioned at the value. With `valueDeltaEncoded` the value has no
   * length: the caller decodes it (a block handle) and reports where it ended.
   */
  *entries(fromRestart = 0): Generator<BlockEntry> {
    if (this.restartCount === 0) return;
    const cursor = new Cursor(
      this.data,
      this.where,
      'BAD_BLOCK',
      this.restartPoint(fromRestart),
      this.restartsOffset,
    );
    let previous: Buffer = EMPTY;
    const entry: BlockEntry = { key: EMPTY, shared: 0, value: EMPTY, cursor, offset: 0 };
    while (!cursor.done) {
      entry.offset = this.where.offset + cursor.position;
      const shared = cursor.varint32('shared key length');
      const nonShared = cursor.varint32('unshared key length');
      const valueLength = this.valueDeltaEncoded ? -1 : cursor.varint32('value length');
      if (shared > previous.length) {
        cursor.fail(`entry shares ${shared} key bytes with a ${previous.length}-byte previous key`);
      }
      const delta = cursor.take(nonShared, 'key');
      const key = Buffer.allocUnsafe(shared + nonShared);
      previous.copy(key, 0, 0, shared);
      key.set(delta, shared);
      entry.key = key;
      entry.shared = shared;
      if (valueLength >= 0) entry.value = cursor.take(valueLength, 'value') as Buffer;
      yield entry;
      previous = key;
    }
  }
}

export interface BlockEntry {
  key: Buffer;
  /** Key bytes shared with the previous entry (0 at restart points). */
  shared: number;
  /** A view into the block (not valueDeltaEncoded blocks). */
  value: Buffer;
  /** Positioned after the key (and the value, when it has a length). */
  cursor: Cursor;
  /** File offset of the entry. */
  offset: number;
}

const EMPTY = Buffer.alloc(0);
