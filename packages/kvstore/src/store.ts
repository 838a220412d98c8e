import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachConcurrent, fromSystemError, throwIfAborted } from '@x/blockio';
import { KvStoreError, type KvStoreWarning, kvError, type WarningListener } from './errors.js';
import { openReadOnly } from './file-open.js';
import { BYTEWISE_COMPARATORS, kTypeValue } from './format/constants.js';
import { HandlePool } from './handle-pool.js';
import { type InternalEntry, isDeletion, type RangeTombstone } from './internal-key.js';
import { readLogRecords } from './log-reader.js';
import { readManifest, type TableFile, userKeyOf, type Version } from './manifest.js';
import { Memtable } from './memtable.js';
import { mergeBatches } from './merge.js';
import { Table } from './table.js';
import { decodeWriteBatch, hexKey } from './write-batch.js';

export interface OpenKvStoreOptions {
  signal?: AbortSignal;
  /** Called for what the reader tolerated (a truncated last log record …); also kept in `warnings`. */
  onWarning?: WarningListener;
}

export interface KvEntriesOptions {
  /** Only keys starting with these bytes. */
  prefix?: Uint8Array;
  /** First key (inclusive). */
  start?: Uint8Array;
  /** Key to stop before (exclusive). */
  end?: Uint8Array;
  signal?: AbortSignal;
}

/** A LevelDB or RocksDB database opened read-only, as of its last write. */
export interface KvStore {
  readonly kind: 'leveldb' | 'rocksdb';
  /** The value of `key`, or undefined when it is absent or deleted. */
  get(key: Uint8Array): Promise<Buffer | undefined>;
  /** Live keys in ascending bytewise order with their newest values; deletions applied. */
  entries(options?: KvEntriesOptions): AsyncIterable<{ key: Buffer; value: Buffer }>;
  close(): Promise<void>;
  /** The directory the store was opened from. */
  readonly directory: string;
  /** What the reader tolerated while opening (see KvStoreWarning). */
  readonly warnings: readonly KvStoreWarning[];
  /** Live table files per level and log files replayed, for reports. */
  readonly files: { readonly tables: readonly TableFile[]; readonly logs: readonly number[] };
}

const CURRENT_PATTERN = /^MANIFEST-(\d+)\n$/;
const LOG_PATTERN = /^(\d+)\.log$/;

/**
 * Opens a LevelDB or RocksDB database directory for reading, without writing
 * anything: no LOCK file is taken or created, no log is replayed into new tables, no
 * manifest is rewritten; every file is opened read-only, so a directory the caller
 * cannot write to (or a copy fetched from a dead OSD) works. Writes still in the
 * logs are replayed in memory.
 */
export async function openKvStore(
  directory: string,
  options: OpenKvStoreOptions = {},
): Promise<KvStore> {
  const { signal } = options;
  const warnings: KvStoreWarning[] = [];
  const onWarning: WarningListener = (warning) => {
    warnings.push(warning);
    options.onWarning?.(warning);
  };
  throwIfAborted(signal, directory);
  let names: Set<string>;
  try {
    const info = await stat(directory);
    if (!info.isDirectory()) {
      throw kvError('NOT_A_DATABASE', 'not a directory', {
        path: directory,
        offset: 0,
        structure: 'database directory',
      });
    }
    names = new Set(await readdir(directory));
  } catch (error) {
    if (error instanceof KvStoreError) throw error;
    throw fromSystemError(error, 'read the database directory', {
      path: directory,
      structure: 'database directory',
    });
  }
  const currentPath = join(directory, 'CURRENT');
  if (!names.has('CURRENT')) {
    throw kvError('NOT_A_DATABASE', 'no CURRENT file: not a LevelDB or RocksDB database', {
      path: currentPath,
      offset: 0,
      structure: 'CURRENT',
    });
  }
  let current: string;
  try {
    current = await readFile(currentPath, 'latin1');
  } catch (error) {
    throw fromSystemError(error, 'read CURRENT', { path: currentPath, structure: 'CURRENT' });
  }
  const match = CURRENT_PATTERN.exec(current);
  if (match === null) {
    throw kvError(
      'BAD_CURRENT',
      `CURRENT should hold "MANIFEST-<number>\\n", it holds ${JSON.stringify(current.slice(0, 80))}`,
      {
        path: currentPath,
        offset: 0,
        structure: 'CURRENT',
      },
    );
  }
  const manifestName = current.slice(0, -1);
  const manifestPath = join(directory, manifestName);
  const manifestHandle = await openReadOnly(manifestPath, 'manifest');
  let version: Version;
  try {
    const { size } = await manifestHandle.stat();
    version = await readManifest(manifestHandle, size, manifestPath, { onWarning, signal });
  } finally {
    await manifestHandle.close();
  }

  const rocksdb =
    version.rocksdbOnly ||
    names.has('IDENTITY') ||
    [...names].some((name) => name.startsWith('OPTIONS-'));
  const kind = rocksdb ? 'rocksdb' : 'leveldb';
  const manifestWhere = { path: manifestPath, offset: 0, structure: 'manifest' };
  if (version.comparator !== undefined && !BYTEWISE_COMPARATORS.has(version.comparator)) {
    throw kvError(
      'UNSUPPORTED',
      `the database is ordered by comparator "${version.comparator}", not bytewise`,
      manifestWhere,
    );
  }
  if (version.blobFiles) {
    throw kvError(
      'UNSUPPORTED',
      'the database keeps values in blob files (BlobDB): not supported',
      manifestWhere,
    );
  }
  if (version.otherColumnFamilies.length > 0) {
    onWarning({
      code: 'OTHER_COLUMN_FAMILIES',
      message: `column families ${version.otherColumnFamilies.map((name) => JSON.stringify(name)).join(', ')} are not read; only "default" is`,
      path: manifestPath,
      offset: 0,
    });
  }

  // Writes not yet flushed to a table: logs at or after the manifest's log number.
  const logNames = new Map<number, string>();
  for (const name of names) {
    const found = LOG_PATTERN.exec(name);
    if (found !== null) logNames.set(Number(found[1]), name);
  }
  const logs = [...logNames.keys()]
    .filter((number) => number >= version.logNumber || number === version.prevLogNumber)
    .sort((a, b) => a - b);
  const memtable = new Memtable();
  for (const number of logs) {
    const name = logNames.get(number) as string;
    const path = join(directory, name);
    const handle = await openReadOnly(path, 'log');
    try {
      const { size } = await handle.stat();
      for await (const record of readLogRecords(handle, size, {
        path,
        kind: 'log',
        logNumber: number,
        onWarning,
        signal,
      })) {
        const batch = decodeWriteBatch(record.data, {
          path,
          offset: record.offset,
          structure: 'write batch',
        });
        memtable.add(batch);
      }
    } finally {
      await handle.close();
    }
  }
  memtable.seal();

  const files = version.levels.flat();
  const tables = new Map<number, Table>();
  await forEachConcurrent(
    files,
    4,
    async (file) => {
      const name = tableFileName(file.number, names);
      if (name === undefined) {
        throw kvError(
          'MISSING_FILE',
          `the manifest lists table ${file.number} (level ${file.level}), the directory has no such file`,
          {
            path: join(
              directory,
              `${String(file.number).padStart(6, '0')}.${rocksdb ? 'sst' : 'ldb'}`,
            ),
            offset: 0,
            structure: 'table file',
          },
        );
      }
      tables.set(file.number, await Table.open(join(directory, name), kind));
    },
    { signal, path: directory },
  );

  return new ReadOnlyStore(kind, directory, version, memtable, tables, warnings, logs);
}

/** LevelDB names tables NNNNNN.ldb (older ones .sst); RocksDB NNNNNN.sst. */
function tableFileName(number: number, names: Set<string>): string | undefined {
  const base = String(number).padStart(6, '0');
  for (const name of [`${base}.ldb`, `${base}.sst`]) if (names.has(name)) return name;
  return undefined;
}

class ReadOnlyStore implements KvStore {
  private closed = false;
  private readonly rangeTombstones: RangeTombstone[];
  /** Table files stay open between lookups (closed by close()). */
  private readonly handles = new HandlePool();
  readonly files: { readonly tables: readonly TableFile[]; readonly logs: readonly number[] };

  constructor(
    readonly kind: 'leveldb' | 'rocksdb',
    readonly directory: string,
    private readonly version: Version,
    private readonly memtable: Memtable,
    private readonly tables: Map<number, Table>,
    readonly warnings: readonly KvStoreWarning[],
    logs: number[],
  ) {
    this.rangeTombstones = [
      ...memtable.rangeTombstones,
      ...[...tables.values()].flatMap((table) => table.rangeTombstones),
    ];
    this.files = { tables: version.levels.flat(), logs };
  }

  /**
   * A point lookup: the newest version among the memtable and every table whose key
   * range holds `key` (each read at the one block that may hold it), as the merge
   * would choose it, without decoding more of any block than needed.
   */
  async get(key: Uint8Array): Promise<Buffer | undefined> {
    this.assertOpen();
    const exact = Buffer.from(key);
    const lookups: Array<Promise<InternalEntry | undefined>> = [];
    for (const files of this.version.levels) {
      for (const file of files) {
        if (
          overlaps(file, exact, undefined) &&
          Buffer.compare(userKeyOf(file.smallest), exact) <= 0
        ) {
          lookups.push(this.table(file).find(exact, this.handles));
        }
      }
    }
    let newest = this.memtable.find(exact);
    for (const found of await Promise.all(lookups)) {
      if (found !== undefined && (newest === undefined || found.sequence > newest.sequence))
        newest = found;
    }
    if (newest === undefined || isDeletion(newest.type)) return undefined;
    this.assertValueType(newest);
    return this.isRangeDeleted(newest) ? undefined : newest.value;
  }

  async *entries(options: KvEntriesOptions = {}): AsyncGenerator<{ key: Buffer; value: Buffer }> {
    this.assertOpen();
    const { low, high } = keyRange(options);
    if (low !== undefined && high !== undefined && Buffer.compare(low, high) >= 0) return;
    const sources: Array<AsyncIterator<InternalEntry[]>> = [this.memtable.batches(low)];
    for (const [level, files] of this.version.levels.entries()) {
      const inRange = files.filter((file) => overlaps(file, low, high));
      if (level === 0) {
        for (const file of inRange)
          sources.push(this.table(file).batches(low, options.signal, this.handles));
      } else if (inRange.length > 0) {
        sources.push(this.levelEntries(inRange, low, options.signal));
      }
    }
    let previousKey: Buffer | undefined;
    for await (const batch of mergeBatches(sources, high)) {
      for (const entry of batch) {
        if (previousKey?.equals(entry.userKey)) continue;
        previousKey = entry.userKey;
        if (isDeletion(entry.type)) continue;
        this.assertValueType(entry);
        if (this.isRangeDeleted(entry)) continue;
        yield { key: entry.userKey, value: entry.value };
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.handles.close();
  }

  private assertValueType(entry: InternalEntry): void {
    if (entry.type !== kTypeValue) {
      throw new KvStoreError(
        'UNSUPPORTED',
        `the newest version of key ${hexKey(entry.userKey)} has value type 0x${entry.type.toString(16)} (merge operand or blob index): not supported`,
        { path: this.directory, structure: 'internal key' },
      );
    }
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new KvStoreError('CLOSED', 'the store is closed', { path: this.directory });
    }
  }

  private table(file: TableFile): Table {
    return this.tables.get(file.number) as Table;
  }

  /** A level ≥ 1: its tables hold disjoint key ranges in order, read one after another. */
  private async *levelEntries(
    files: TableFile[],
    low: Buffer | undefined,
    signal?: AbortSignal,
  ): AsyncGenerator<InternalEntry[]> {
    for (const file of files) yield* this.table(file).batches(low, signal, this.handles);
  }

  private isRangeDeleted(entry: InternalEntry): boolean {
    for (const tombstone of this.rangeTombstones) {
      if (
        tombstone.sequence > entry.sequence &&
        Buffer.compare(tombstone.start, entry.userKey) <= 0 &&
        Buffer.compare(entry.userKey, tombstone.end) < 0
      ) {
        return true;
      }
    }
    return false;
  }
}

function overlaps(file: TableFile, low: Buffer | undefined, high: Buffer | undefined): boolean {
  if (low !== undefined && Buffer.compare(userKeyOf(file.largest), low) < 0) return false;
  if (high !== undefined && Buffer.compare(userKeyOf(file.smallest), high) >= 0) return false;
  return true;
}

/** [low, high) from start, end and prefix (undefined = unbounded). */
function keyRange(options: KvEntriesOptions): {
  low: Buffer | undefined;
  high: Buffer | undefined;
} {
  let low: Buffer | undefined =
    options.start === undefined ? undefined : Buffer.from(options.start);
  let high: Buffer | undefined = options.end === undefined ? undefined : Buffer.from(options.end);
  if (options.prefix !== undefined && options.prefix.length > 0) {
    const prefix = Buffer.from(options.prefix);
    if (low === undefined || Buffer.compare(low, prefix) < 0) low = prefix;
    const after = prefixSuccessor(prefix);
    if (after !== undefined && (high === undefined || Buffer.compare(after, high) < 0))
      high = after;
  }
  return { low, high };
}

/** The smallest key greater than every key starting with `prefix` (none for all-0xff). */
export function prefixSuccessor(prefix: Buffer): Buffer | undefined {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const successor = Buffer.from(prefix.subarray(0, end));
  successor[end - 1] = (successor[end - 1] as number) + 1;
  return successor;
}
