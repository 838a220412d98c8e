import { BlockIoError, type BlockIoErrorOptions } from '@x/blockio';

/**
 * Stable codes for problems found in a LevelDB or RocksDB directory. Scripts and
 * tests match on these; messages are for people. Every error names the file, the
 * byte offset and the structure (CURRENT, manifest record, log record, write batch,
 * table footer, index block, data block …) where the problem is.
 */
export type KvStoreErrorCode =
  /** The directory has no CURRENT file, or is not a directory. */
  | 'NOT_A_DATABASE'
  /** CURRENT does not name a MANIFEST file. */
  | 'BAD_CURRENT'
  /** A manifest (VersionEdit) record that does not decode, or a version that is not consistent. */
  | 'BAD_MANIFEST'
  /** A log (WAL or manifest) record whose framing is wrong: bad length, fragment order, unknown type. */
  | 'BAD_LOG_RECORD'
  /** A write batch in the log that does not decode (wrong count, unknown record, short). */
  | 'BAD_WRITE_BATCH'
  /** A stored checksum (log record or table block) that does not match the bytes. */
  | 'BAD_CHECKSUM'
  /** A table file whose footer, magic or block handles are wrong. */
  | 'BAD_TABLE'
  /** A block (data, index, meta) whose entries or restart array do not decode. */
  | 'BAD_BLOCK'
  /** A compressed block that does not decompress. */
  | 'BAD_COMPRESSION'
  /** A file ends before a structure it must hold. */
  | 'TRUNCATED'
  /** A table file the manifest lists is not in the directory. */
  | 'MISSING_FILE'
  /** Keys in a table or block out of order, or a file out of its recorded key range. */
  | 'BAD_ORDER'
  /**
   * Valid data this reader does not handle: another comparator, merge operands, blob
   * files, LZ4/bzip2 compression, prepared transactions, user timestamps, format_version ≥ 6.
   */
  | 'UNSUPPORTED'
  /** The store was closed. */
  | 'CLOSED';

/** Every error from @x/kvstore: a BlockIoError with a KV-specific code and location. */
export class KvStoreError extends BlockIoError {
  constructor(code: KvStoreErrorCode, message: string, options: BlockIoErrorOptions = {}) {
    super(code, message, options);
  }

  /** The file the problem is in (the same as `path`). */
  get file(): string | undefined {
    return this.path;
  }

  /** The one-line description, ending with the stable code scripts can match. */
  override describe(): string {
    return `${super.describe()} [${this.code}]`;
  }
}

/** Where a structure is: passed down so each decoder can name it in its errors. */
export interface Location {
  readonly path: string;
  readonly offset: number;
  readonly structure: string;
}

export function kvError(
  code: KvStoreErrorCode,
  message: string,
  where: Location,
  cause?: unknown,
): KvStoreError {
  return new KvStoreError(code, message, { ...where, cause });
}

/** Something the reader tolerated, as LevelDB/RocksDB recovery would, but the caller should know. */
export interface KvStoreWarning {
  readonly code: KvStoreWarningCode;
  readonly message: string;
  readonly path: string;
  readonly offset: number;
}

export type KvStoreWarningCode =
  /**
   * The last record of a log ends early (the writer died mid-write): LevelDB and
   * RocksDB recovery drop it, and so does this reader.
   */
  | 'TRUNCATED_LOG_RECORD'
  /** Column families other than "default" exist; only "default" is read. */
  | 'OTHER_COLUMN_FAMILIES';

export type WarningListener = (warning: KvStoreWarning) => void;
