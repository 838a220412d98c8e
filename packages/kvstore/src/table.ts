import type { FileHandle } from 'node:fs/promises';
import { throwIfAborted } from '@x/blockio';
import { Block } from './block.js';
import { blockChecksum, CHECKSUM_NAMES, storedChecksum } from './checksum.js';
import { Cursor, copyBytes } from './cursor.js';
import { decompressBlock } from './decompress.js';
import { kvError, type Location } from './errors.js';
import { openReadOnly } from './file-open.js';
import { readExact } from './file-read.js';
import {
  BYTEWISE_COMPARATORS,
  kBinarySearchWithFirstKey,
  kBlockBasedTableMagicNumber,
  kBlockHandlesLength,
  kBlockTrailerSize,
  kComparatorProperty,
  kCRC32c,
  kCuckooTableMagicNumber,
  kGlobalSeqnoProperty,
  kIndexKeyIsUserKeyProperty,
  kIndexTypeProperty,
  kIndexValueIsDeltaEncodedProperty,
  kLegacyBlockBasedTableMagicNumber,
  kLegacyFooterLength,
  kLegacyPlainTableMagicNumber,
  kNewVersionsFooterLength,
  kNoChecksum,
  kPlainTableMagicNumber,
  kPropertiesBlockName,
  kPropertiesBlockOldName,
  kRangeDelBlockName,
  kTwoLevelIndexSearch,
  kTypeRangeDeletion,
} from './format/constants.js';
import { BLOCK_TRAILER, FOOTER_TAIL } from './format/structs.js';
import type { HandlePool } from './handle-pool.js';
import type { InternalEntry, RangeTombstone } from './internal-key.js';
import { compareUserKeys, decodeInternalKey } from './internal-key-codec.js';

/** BlockHandle (format.h): where a block is in the file, without its 5-byte trailer. */
export interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

/**
 * An open SSTable (LevelDB table format, RocksDB block-based table up to
 * format_version 5): its footer, properties, index block and range tombstones are
 * read once; data blocks are read one at a time while iterating, so a table of any
 * size streams through a few blocks of memory.
 */
export class Table {
  private constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly kind: 'leveldb' | 'rocksdb',
    readonly formatVersion: number,
    readonly checksumType: number,
    readonly indexType: number,
    readonly indexKeyIsUserKey: boolean,
    readonly indexValueDeltaEncoded: boolean,
    readonly globalSequence: number | undefined,
    readonly indexHandle: BlockHandle,
    readonly rangeTombstones: RangeTombstone[],
  ) {}

  /**
   * Reads footer, meta-index, properties and range tombstones; the index block is read
   * when the table is first used (a store of thousands of tables opens quickly and keeps
   * only the indexes of the tables its lookups touch).
   */
  static async open(path: string, kind: 'leveldb' | 'rocksdb'): Promise<Table> {
    const handle = await openReadOnly(path, 'table file');
    try {
      const { size } = await handle.stat();
      return await Table.read(handle, path, size, kind);
    } finally {
      await handle.close();
    }
  }

  private static async read(
    handle: FileHandle,
    path: string,
    fileSize: number,
    kind: 'leveldb' | 'rocksdb',
  ): Promise<Table> {
    const footerWhere = (offset: number): Location => ({ path, offset, structure: 'table footer' });
    if (fileSize < kLegacyFooterLength) {
      throw kvError(
        'TRUNCATED',
        `a ${fileSize}-byte file cannot hold a table footer (${kLegacyFooterLength} bytes)`,
        footerWhere(0),
      );
    }
    const tailLength = Math.min(fileSize, kNewVersionsFooterLength);
    const tail = await readExact(handle, path, fileSize - tailLength, tailLength, 'table footer');
    const { magic, formatVersion: newFormatVersion } = FOOTER_TAIL.decode(tail, tailLength - 12);
    let footerStart: number;
    let checksumType = kCRC32c;
    let formatVersion = 0;
    if (magic === kLegacyBlockBasedTableMagicNumber) {
      footerStart = tailLength - kLegacyFooterLength;
    } else if (magic === kBlockBasedTableMagicNumber) {
      if (kind === 'leveldb') {
        throw kvError(
          'BAD_TABLE',
          'a RocksDB table in a LevelDB database',
          footerWhere(fileSize - 8),
        );
      }
      if (tailLength < kNewVersionsFooterLength) {
        throw kvError('TRUNCATED', 'the file is too short for a RocksDB footer', footerWhere(0));
      }
      formatVersion = newFormatVersion;
      if (formatVersion < 1 || formatVersion > 5) {
        throw kvError(
          formatVersion > 5 ? 'UNSUPPORTED' : 'BAD_TABLE',
          `block-based table format_version ${formatVersion} (this reader knows 0 to 5)`,
          footerWhere(fileSize - 12),
        );
      }
      footerStart = 0;
      checksumType = tail[0] as number;
    } else {
      const other =
        magic === kPlainTableMagicNumber || magic === kLegacyPlainTableMagicNumber
          ? 'a RocksDB plain table'
          : magic === kCuckooTableMagicNumber
            ? 'a RocksDB cuckoo table'
            : undefined;
      if (other !== undefined) {
        throw kvError(
          'UNSUPPORTED',
          `${other} (only block-based tables are read)`,
          footerWhere(fileSize - 8),
        );
      }
      throw kvError(
        'BAD_TABLE',
        `bad table magic 0x${magic.toString(16).padStart(16, '0')} (expected 0x${kLegacyBlockBasedTableMagicNumber.toString(16)} or 0x${kBlockBasedTableMagicNumber.toString(16)})`,
        footerWhere(fileSize - 8),
      );
    }
    if (CHECKSUM_NAMES[checksumType] === undefined) {
      throw kvError(
        'BAD_TABLE',
        `unknown checksum type ${checksumType}`,
        footerWhere(fileSize - tailLength),
      );
    }
    const handlesStart = footerStart + (formatVersion >= 1 ? 1 : 0);
    const handles = new Cursor(
      tail,
      { path, offset: fileSize - tailLength, structure: 'table footer' },
      'BAD_TABLE',
      handlesStart,
      handlesStart + kBlockHandlesLength,
    );
    const metaindexHandle = decodeHandle(handles, 'meta-index handle');
    const indexHandle = decodeHandle(handles, 'index handle');

    const reader = new BlockReader(handle, path, fileSize, kind, formatVersion, checksumType);
    const metaindex = new Block(await reader.read(metaindexHandle, 'meta-index block'), {
      path,
      offset: metaindexHandle.offset,
      structure: 'meta-index block',
    });
    const metaBlocks = new Map<string, BlockHandle>();
    for (const entry of metaindex.entries()) {
      const name = entry.key.toString('latin1');
      const value = new Cursor(
        entry.value,
        { path, offset: entry.offset, structure: 'meta-index block' },
        'BAD_BLOCK',
      );
      metaBlocks.set(name, decodeHandle(value, `handle of meta block ${name}`));
    }

    let indexType = 0;
    let indexKeyIsUserKey = false;
    let indexValueDeltaEncoded = false;
    let globalSequence: number | undefined;
    const propertiesHandle =
      metaBlocks.get(kPropertiesBlockName) ?? metaBlocks.get(kPropertiesBlockOldName);
    if (kind === 'rocksdb' && propertiesHandle !== undefined) {
      const where = { path, offset: propertiesHandle.offset, structure: 'properties block' };
      const properties = new Map<string, Buffer>();
      for (const entry of new Block(
        await reader.read(propertiesHandle, 'properties block'),
        where,
      ).entries()) {
        properties.set(entry.key.toString('latin1'), Buffer.from(entry.value));
      }
      const varint = (name: string): number | undefined => {
        const raw = properties.get(name);
        return raw === undefined ? undefined : new Cursor(raw, where, 'BAD_TABLE').varint64(name);
      };
      const comparator = properties.get(kComparatorProperty)?.toString('latin1');
      if (comparator !== undefined && comparator !== '' && !BYTEWISE_COMPARATORS.has(comparator)) {
        throw kvError(
          'UNSUPPORTED',
          `the table is ordered by comparator "${comparator}", not bytewise`,
          where,
        );
      }
      const rawIndexType = properties.get(kIndexTypeProperty);
      if (rawIndexType !== undefined) {
        if (rawIndexType.length !== 4)
          throw kvError('BAD_TABLE', `${kIndexTypeProperty} is not a fixed32`, where);
        indexType = rawIndexType.readUInt32LE(0);
      }
      if (indexType > kBinarySearchWithFirstKey) {
        throw kvError('UNSUPPORTED', `index type ${indexType} is not supported`, where);
      }
      indexKeyIsUserKey = (varint(kIndexKeyIsUserKeyProperty) ?? 0) !== 0;
      indexValueDeltaEncoded = (varint(kIndexValueIsDeltaEncodedProperty) ?? 0) !== 0;
      const global = varint(kGlobalSeqnoProperty);
      if (global !== undefined && global !== 0) globalSequence = global;
    }

    const rangeTombstones: RangeTombstone[] = [];
    const rangeDelHandle = metaBlocks.get(kRangeDelBlockName);
    if (rangeDelHandle !== undefined) {
      const where = { path, offset: rangeDelHandle.offset, structure: 'range deletion block' };
      for (const entry of new Block(
        await reader.read(rangeDelHandle, 'range deletion block'),
        where,
      ).entries()) {
        const key = decodeInternalKey(entry.key, where, entry.offset);
        if (key.type !== kTypeRangeDeletion) {
          throw kvError('BAD_BLOCK', `a range deletion block entry of type ${key.type}`, {
            ...where,
            offset: entry.offset,
          });
        }
        rangeTombstones.push({
          start: key.userKey,
          end: copyBytes(entry.value),
          sequence: globalSequence ?? key.sequence,
        });
      }
    }

    return new Table(
      path,
      fileSize,
      kind,
      formatVersion,
      checksumType,
      indexType,
      indexKeyIsUserKey,
      indexValueDeltaEncoded,
      globalSequence,
      indexHandle,
      rangeTombstones,
    );
  }

  /**
   * The table's entries in internal-key order, from the first whose user key is ≥
   * `start` (all when undefined), one array per data block: a merge then awaits once
   * per block rather than once per entry. Uses a pooled handle, or opens the file for
   * the iteration, and releases it when the iteration ends or is abandoned.
   */
  async *batches(
    start?: Buffer,
    signal?: AbortSignal,
    pool?: HandlePool,
  ): AsyncGenerator<InternalEntry[]> {
    const { handle, release } =
      pool === undefined ? await ownHandle(this.path) : await pool.acquire(this.path, 'table file');
    try {
      const reader = new BlockReader(
        handle,
        this.path,
        this.fileSize,
        this.kind,
        this.formatVersion,
        this.checksumType,
      );
      let previous: InternalEntry | undefined;
      for await (const dataHandle of this.dataBlockHandles(reader, start)) {
        throwIfAborted(signal, this.path);
        const where = { path: this.path, offset: dataHandle.offset, structure: 'data block' };
        const block = new Block(await reader.read(dataHandle, 'data block'), where);
        const fromRestart =
          start === undefined
            ? 0
            : block.seekRestart(start, (key, target) => compareUserKeys(key, target, where));
        const batch: InternalEntry[] = [];
        for (const entry of block.entries(fromRestart)) {
          const key = decodeInternalKey(entry.key, where, entry.offset);
          if (start !== undefined && Buffer.compare(key.userKey, start) < 0) continue;
          const internal: InternalEntry = {
            userKey: key.userKey,
            sequence: this.globalSequence ?? key.sequence,
            type: key.type,
            value: copyBytes(entry.value),
          };
          if (previous !== undefined) {
            const order = Buffer.compare(previous.userKey, internal.userKey);
            if (order > 0 || (order === 0 && previous.sequence < internal.sequence)) {
              throw kvError('BAD_ORDER', 'a key sorts before the key preceding it in the table', {
                ...where,
                offset: entry.offset,
              });
            }
          }
          previous = internal;
          batch.push(internal);
        }
        if (batch.length > 0) yield batch;
      }
    } finally {
      await release();
    }
  }

  /**
   * The newest entry (highest sequence) for exactly `key` in this table, or undefined:
   * a point lookup reads the one block that may hold it and decodes only up to it.
   */
  async find(key: Buffer, pool?: HandlePool): Promise<InternalEntry | undefined> {
    const { handle, release } =
      pool === undefined ? await ownHandle(this.path) : await pool.acquire(this.path, 'table file');
    try {
      const reader = new BlockReader(
        handle,
        this.path,
        this.fileSize,
        this.kind,
        this.formatVersion,
        this.checksumType,
      );
      for await (const dataHandle of this.dataBlockHandles(reader, key)) {
        const where = { path: this.path, offset: dataHandle.offset, structure: 'data block' };
        const block = new Block(await reader.read(dataHandle, 'data block'), where);
        const fromRestart = block.seekRestart(key, (candidate, target) =>
          compareUserKeys(candidate, target, where),
        );
        for (const entry of block.entries(fromRestart)) {
          const decoded = decodeInternalKey(entry.key, where, entry.offset);
          const order = Buffer.compare(decoded.userKey, key);
          if (order < 0) continue;
          if (order > 0) return undefined;
          return {
            userKey: decoded.userKey,
            sequence: this.globalSequence ?? decoded.sequence,
            type: decoded.type,
            value: copyBytes(entry.value),
          };
        }
      }
      return undefined;
    } finally {
      await release();
    }
  }

  /** The entries one by one (see batches). */
  async *entries(
    start?: Buffer,
    signal?: AbortSignal,
    pool?: HandlePool,
  ): AsyncGenerator<InternalEntry> {
    for await (const batch of this.batches(start, signal, pool)) yield* batch;
  }

  private indexBlock: Promise<Block> | undefined;

  /** The index block, read once (through the caller's reader) and kept. */
  index(reader?: BlockReader): Promise<Block> {
    if (this.indexBlock === undefined) {
      const load = async (): Promise<Block> => {
        const own = reader === undefined ? await ownHandle(this.path) : undefined;
        try {
          const from =
            reader ??
            new BlockReader(
              (own as { handle: FileHandle }).handle,
              this.path,
              this.fileSize,
              this.kind,
              this.formatVersion,
              this.checksumType,
            );
          return new Block(
            await from.read(this.indexHandle, 'index block'),
            { path: this.path, offset: this.indexHandle.offset, structure: 'index block' },
            this.indexValueDeltaEncoded,
          );
        } finally {
          await own?.release();
        }
      };
      this.indexBlock = load();
      // A failed read is not cached: the next use reports it again.
      this.indexBlock.catch(() => {
        this.indexBlock = undefined;
      });
    }
    return this.indexBlock;
  }

  /** Data block handles from the one that may hold `start` on (two-level indexes walked). */
  private async *dataBlockHandles(
    reader: BlockReader,
    start: Buffer | undefined,
  ): AsyncGenerator<BlockHandle> {
    const index = await this.index(reader);
    if (this.indexType !== kTwoLevelIndexSearch) {
      yield* this.indexHandles(index, start);
      return;
    }
    for (const partitionHandle of this.indexHandles(index, start)) {
      const partition = new Block(
        await reader.read(partitionHandle, 'index partition'),
        { path: this.path, offset: partitionHandle.offset, structure: 'index partition' },
        this.indexValueDeltaEncoded,
      );
      yield* this.indexHandles(partition, start);
    }
  }

  /** Decodes the block handles of an index block from the entry that may cover `start`. */
  private *indexHandles(index: Block, start: Buffer | undefined): Generator<BlockHandle> {
    // Separators may carry kMaxSequenceNumber (2^56 - 1): only the user key is used.
    const userKeyOfIndex = (key: Buffer, where: Location): Buffer => {
      if (this.indexKeyIsUserKey) return key;
      if (key.length < 8) throw kvError('BAD_BLOCK', `an index key of ${key.length} bytes`, where);
      return key.subarray(0, key.length - 8);
    };
    const fromRestart =
      start === undefined
        ? 0
        : index.seekRestart(start, (key, target) =>
            Buffer.compare(userKeyOfIndex(key, index.where), target),
          );
    let previous: BlockHandle | undefined;
    for (const entry of index.entries(fromRestart)) {
      const where = { ...index.where, offset: entry.offset };
      let handle: BlockHandle;
      if (this.indexValueDeltaEncoded) {
        const cursor = entry.cursor;
        if (entry.shared !== 0 && previous !== undefined) {
          const delta = cursor.varsigned64('block size delta');
          handle = {
            offset: previous.offset + previous.size + kBlockTrailerSize,
            size: previous.size + delta,
          };
        } else {
          handle = decodeHandle(cursor, 'block handle');
        }
        if (this.indexType === kBinarySearchWithFirstKey) cursor.lengthPrefixed('first key');
      } else {
        handle = decodeHandle(new Cursor(entry.value, where, 'BAD_BLOCK'), 'block handle');
      }
      previous = handle;
      if (start !== undefined && Buffer.compare(userKeyOfIndex(entry.key, where), start) < 0)
        continue;
      yield handle;
    }
  }
}

/** Reads a block and its trailer, verifies the checksum and decompresses it. */
class BlockReader {
  /** Bytes read ahead of the last block, for the blocks after it. */
  private buffer: Buffer | undefined;
  private bufferStart = 0;
  private nextOffset = -1;
  private readahead = 0;

  constructor(
    readonly handle: FileHandle,
    readonly path: string,
    readonly fileSize: number,
    readonly kind: 'leveldb' | 'rocksdb',
    readonly formatVersion: number,
    readonly checksumType: number,
  ) {}

  async read(blockHandle: BlockHandle, structure: string): Promise<Buffer> {
    const where = { path: this.path, offset: blockHandle.offset, structure };
    const end = blockHandle.offset + blockHandle.size + kBlockTrailerSize;
    if (blockHandle.size < 0 || end > this.fileSize) {
      throw kvError(
        'BAD_TABLE',
        `${structure} handle (offset ${blockHandle.offset}, size ${blockHandle.size}) runs past the end of the ${this.fileSize}-byte file`,
        where,
      );
    }
    const raw = await this.readRaw(
      blockHandle.offset,
      blockHandle.size + kBlockTrailerSize,
      structure,
    );
    const trailer = BLOCK_TRAILER.decode(raw, blockHandle.size);
    if (this.checksumType !== kNoChecksum) {
      const computed = blockChecksum(this.checksumType, raw.subarray(0, blockHandle.size + 1));
      if (computed === undefined) {
        throw kvError(
          'UNSUPPORTED',
          `${CHECKSUM_NAMES[this.checksumType] ?? this.checksumType} block checksums are not supported`,
          where,
        );
      }
      const stored = storedChecksum(this.checksumType, trailer.checksum);
      if (computed !== stored) {
        throw kvError(
          'BAD_CHECKSUM',
          `${structure} ${CHECKSUM_NAMES[this.checksumType]} mismatch: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`,
          where,
        );
      }
    }
    return decompressBlock(trailer.compressionType, raw.subarray(0, blockHandle.size), {
      kind: this.kind,
      formatVersion: this.formatVersion,
      where,
    });
  }

  /**
   * A scan reads a table's data blocks one after another: once reads are sequential,
   * read ahead (doubling from 64 KiB to 2 MiB, as RocksDB's auto-readahead does) so a
   * scan costs a few large reads instead of one per 4 KiB block; point lookups, which
   * jump, read just their block.
   */
  private async readRaw(offset: number, length: number, structure: string): Promise<Buffer> {
    const end = offset + length;
    const buffer = this.buffer;
    if (
      buffer !== undefined &&
      offset >= this.bufferStart &&
      end <= this.bufferStart + buffer.length
    ) {
      this.nextOffset = end;
      return buffer.subarray(offset - this.bufferStart, end - this.bufferStart);
    }
    this.readahead =
      offset === this.nextOffset ? Math.min(Math.max(this.readahead * 2, 64 << 10), 2 << 20) : 0;
    const want = Math.min(Math.max(length, this.readahead), this.fileSize - offset);
    const chunk = await readExact(this.handle, this.path, offset, want, structure);
    this.buffer = want > length ? chunk : undefined;
    this.bufferStart = offset;
    this.nextOffset = end;
    return chunk.subarray(0, length);
  }
}

async function ownHandle(
  path: string,
): Promise<{ handle: FileHandle; release: () => Promise<void> }> {
  const handle = await openReadOnly(path, 'table file');
  return { handle, release: () => handle.close() };
}

function decodeHandle(cursor: Cursor, what: string): BlockHandle {
  const offset = cursor.varint64(`${what} offset`);
  const size = cursor.varint64(`${what} size`);
  return { offset, size };
}
