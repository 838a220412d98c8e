import type { FileHandle } from 'node:fs/promises';
import { Cursor, copyBytes } from './cursor.js';
import { kvError, type Location, type WarningListener } from './errors.js';
import {
  kBlobFileAddition,
  kBlobFileGarbage,
  kColumnFamily,
  kColumnFamilyAdd,
  kColumnFamilyDrop,
  kCompactPointer,
  kComparator,
  kCustomTagNonSafeIgnoreMask,
  kDeletedFile,
  kInAtomicGroup,
  kLastSequence,
  kLogNumber,
  kMaxColumnFamily,
  kMinLogNumberToKeep,
  kNewFile,
  kNewFile2,
  kNewFile3,
  kNewFile4,
  kNextFileNumber,
  kPathId,
  kPrevLogNumber,
  kTagSafeIgnoreMask,
  kTerminate,
} from './format/constants.js';
import { readLogRecords } from './log-reader.js';

/** A table file of the current version, as the manifest describes it. */
export interface TableFile {
  readonly level: number;
  readonly number: number;
  readonly size: number;
  /** Smallest and largest internal keys (user key + 8-byte trailer). */
  readonly smallest: Buffer;
  readonly largest: Buffer;
}

/** One VersionEdit record, decoded. */
export interface VersionEdit {
  comparator?: string;
  logNumber?: number;
  prevLogNumber?: number;
  nextFileNumber?: number;
  lastSequence?: bigint;
  /** RocksDB: the column family the edit is about (0 = default when absent). */
  columnFamily: number;
  columnFamilyAdd?: string;
  columnFamilyDrop: boolean;
  /** RocksDB kInAtomicGroup: how many more edits belong to this group. */
  atomicGroupRemaining?: number;
  deletedFiles: Array<{ level: number; number: number }>;
  newFiles: TableFile[];
  /** Tags only RocksDB writes were seen. */
  rocksdbOnly: boolean;
  blobFiles: boolean;
}

/**
 * Decodes one VersionEdit (LevelDB version_edit.cc, RocksDB version_edit.cc
 * VersionEdit::DecodeFrom), including RocksDB's NewFile2/3/4 with custom fields,
 * column families, atomic groups, blob file records and forward-compatible
 * (safe-to-ignore) tags.
 */
export function decodeVersionEdit(data: Buffer, where: Location): VersionEdit {
  const cursor = new Cursor(data, where, 'BAD_MANIFEST');
  const edit: VersionEdit = {
    columnFamily: 0,
    columnFamilyDrop: false,
    deletedFiles: [],
    newFiles: [],
    rocksdbOnly: false,
    blobFiles: false,
  };
  while (!cursor.done) {
    const tagAt = cursor.position;
    const tag = cursor.varint32('tag');
    if (tag >= 100) edit.rocksdbOnly = true;
    switch (tag) {
      case kComparator:
        edit.comparator = Buffer.from(cursor.lengthPrefixed('comparator name')).toString('latin1');
        break;
      case kLogNumber:
        edit.logNumber = cursor.varint64('log number');
        break;
      case kPrevLogNumber:
        edit.prevLogNumber = cursor.varint64('previous log number');
        break;
      case kNextFileNumber:
        edit.nextFileNumber = cursor.varint64('next file number');
        break;
      case kLastSequence:
        edit.lastSequence = cursor.varint64Big('last sequence');
        break;
      case kMinLogNumberToKeep:
        edit.rocksdbOnly = true;
        cursor.varint64('min log number to keep');
        break;
      case kCompactPointer:
        cursor.varint32('compact pointer level');
        cursor.lengthPrefixed('compact pointer key');
        break;
      case kDeletedFile: {
        const level = cursor.varint32('deleted file level');
        const number = cursor.varint64('deleted file number');
        edit.deletedFiles.push({ level, number });
        break;
      }
      case kNewFile:
      case kNewFile2:
      case kNewFile3:
      case kNewFile4:
        edit.newFiles.push(decodeNewFile(cursor, tag));
        break;
      case kColumnFamily:
        edit.columnFamily = cursor.varint32('column family');
        break;
      case kColumnFamilyAdd:
        edit.columnFamilyAdd = Buffer.from(cursor.lengthPrefixed('column family name')).toString(
          'utf8',
        );
        break;
      case kColumnFamilyDrop:
        edit.columnFamilyDrop = true;
        break;
      case kMaxColumnFamily:
        cursor.varint32('max column family');
        break;
      case kInAtomicGroup:
        edit.atomicGroupRemaining = cursor.varint32('atomic group remaining entries');
        break;
      case kBlobFileAddition:
      case kBlobFileGarbage:
        edit.blobFiles = true;
        skipBlobFileRecord(cursor, tag);
        break;
      default:
        if ((tag & kTagSafeIgnoreMask) !== 0) {
          // DbId, WAL additions/deletions, full_history_ts_low …: length-prefixed, ignorable.
          edit.rocksdbOnly = true;
          cursor.lengthPrefixed(`forward-compatible field (tag ${tag})`);
          break;
        }
        cursor.fail(`unknown VersionEdit tag ${tag}`, tagAt);
    }
  }
  return edit;
}

function decodeNewFile(cursor: Cursor, tag: number): TableFile {
  const level = cursor.varint32('new file level');
  if (level > 63) cursor.fail(`new file level ${level} is beyond any LSM tree`);
  const number = cursor.varint64('new file number');
  let pathId = 0;
  if (tag === kNewFile3) pathId = cursor.varint32('new file path id');
  const size = cursor.varint64('new file size');
  const smallest = copyBytes(cursor.lengthPrefixed('smallest key'));
  const largest = copyBytes(cursor.lengthPrefixed('largest key'));
  if (smallest.length < 8 || largest.length < 8)
    cursor.fail('a file key range shorter than an internal key');
  if (tag !== kNewFile) {
    cursor.varint64Big('smallest sequence');
    cursor.varint64Big('largest sequence');
  }
  if (tag === kNewFile4) {
    for (;;) {
      const fieldAt = cursor.position;
      const field = cursor.varint32('new file custom tag');
      if (field === kTerminate) break;
      const payload = cursor.lengthPrefixed(`new file custom field ${field}`);
      if (field === kPathId) {
        pathId = new Cursor(payload, cursor.where, 'BAD_MANIFEST').u8('path id');
      } else if ((field & kCustomTagNonSafeIgnoreMask) !== 0) {
        cursor.fail(`new file custom field ${field} must be understood and is not`, fieldAt);
      }
    }
  }
  if (pathId !== 0) {
    throw kvError(
      'UNSUPPORTED',
      `table ${number} lives in db_paths[${pathId}], outside this directory`,
      {
        ...cursor.where,
        offset: cursor.where.offset + cursor.position,
      },
    );
  }
  return { level, number, size, smallest, largest };
}

/** BlobFileAddition / BlobFileGarbage (blob_file_addition.cc): fixed fields, then custom fields. */
function skipBlobFileRecord(cursor: Cursor, tag: number): void {
  cursor.varint64Big('blob file number');
  cursor.varint64Big('blob count');
  cursor.varint64Big('blob bytes');
  if (tag === kBlobFileAddition) {
    cursor.lengthPrefixed('blob checksum method');
    cursor.lengthPrefixed('blob checksum value');
  }
  for (;;) {
    const field = cursor.varint32('blob custom tag');
    if (field === kTerminate) break;
    cursor.lengthPrefixed('blob custom field');
  }
}

/** The state of the database the manifest describes (the default column family). */
export interface Version {
  readonly rocksdbOnly: boolean;
  readonly comparator: string | undefined;
  /** Logs with a number ≥ this (or = prevLogNumber) hold writes not yet in tables. */
  readonly logNumber: number;
  readonly prevLogNumber: number;
  readonly lastSequence: bigint;
  readonly nextFileNumber: number;
  /** Live tables per level. */
  readonly levels: TableFile[][];
  /** Names of the other column families (not read). */
  readonly otherColumnFamilies: string[];
  readonly blobFiles: boolean;
}

interface FamilyState {
  name: string;
  logNumber: number;
  comparator: string | undefined;
  files: Map<number, TableFile>;
}

/** Replays the manifest's VersionEdits into the current version (VersionSet::Recover). */
export async function readManifest(
  handle: FileHandle,
  size: number,
  path: string,
  options: { onWarning?: WarningListener | undefined; signal?: AbortSignal | undefined },
): Promise<Version> {
  const families = new Map<number, FamilyState>([
    [0, { name: 'default', logNumber: 0, comparator: undefined, files: new Map() }],
  ]);
  let rocksdbOnly = false;
  let blobFiles = false;
  let prevLogNumber = 0;
  let lastSequence: bigint | undefined;
  let nextFileNumber: number | undefined;
  let records = 0;
  let group: Array<{ edit: VersionEdit; where: Location }> = [];

  const apply = (edit: VersionEdit, where: Location) => {
    if (edit.rocksdbOnly) rocksdbOnly = true;
    if (edit.blobFiles) blobFiles = true;
    if (edit.prevLogNumber !== undefined) prevLogNumber = edit.prevLogNumber;
    if (edit.lastSequence !== undefined) lastSequence = edit.lastSequence;
    if (edit.nextFileNumber !== undefined) nextFileNumber = edit.nextFileNumber;
    if (edit.columnFamilyAdd !== undefined) {
      if (families.has(edit.columnFamily)) {
        throw kvError('BAD_MANIFEST', `column family ${edit.columnFamily} is added twice`, where);
      }
      families.set(edit.columnFamily, {
        name: edit.columnFamilyAdd,
        logNumber: 0,
        comparator: undefined,
        files: new Map(),
      });
    }
    const family = families.get(edit.columnFamily);
    if (family === undefined) {
      // RocksDB skips edits of dropped column families the same way.
      return;
    }
    if (edit.columnFamilyDrop) {
      if (edit.columnFamily === 0)
        throw kvError('BAD_MANIFEST', 'the default column family is dropped', where);
      families.delete(edit.columnFamily);
      return;
    }
    if (edit.comparator !== undefined) family.comparator = edit.comparator;
    if (edit.logNumber !== undefined) family.logNumber = edit.logNumber;
    for (const deleted of edit.deletedFiles) {
      const existing = family.files.get(deleted.number);
      if (existing === undefined || existing.level !== deleted.level) {
        // LevelDB ignores this; RocksDB's VersionBuilder reports it. A table deleted
        // twice means the manifest does not describe what the writer had.
        throw kvError(
          'BAD_MANIFEST',
          `edit deletes table ${deleted.number} from level ${deleted.level}, where the version has no such table`,
          where,
        );
      }
      family.files.delete(deleted.number);
    }
    for (const added of edit.newFiles) family.files.set(added.number, added);
  };

  for await (const record of readLogRecords(handle, size, {
    path,
    kind: 'manifest',
    onWarning: options.onWarning,
    signal: options.signal,
  })) {
    const where = { path, offset: record.offset, structure: 'manifest record (VersionEdit)' };
    const edit = decodeVersionEdit(record.data, where);
    records++;
    if (edit.atomicGroupRemaining !== undefined || group.length > 0) {
      // RocksDB applies an atomic group only once all of its edits are read.
      group.push({ edit, where });
      if (edit.atomicGroupRemaining === 0) {
        for (const member of group) apply(member.edit, member.where);
        group = [];
      }
      continue;
    }
    apply(edit, where);
  }
  const where = { path, offset: size, structure: 'manifest' };
  if (records === 0)
    throw kvError('BAD_MANIFEST', 'the manifest holds no VersionEdit record', {
      ...where,
      offset: 0,
    });
  const family = families.get(0) as FamilyState;
  if (nextFileNumber === undefined)
    throw kvError('BAD_MANIFEST', 'no next-file-number entry in the manifest', where);
  if (lastSequence === undefined)
    throw kvError('BAD_MANIFEST', 'no last-sequence entry in the manifest', where);
  const levels: TableFile[][] = [];
  for (const file of family.files.values()) {
    while (levels.length <= file.level) levels.push([]);
    (levels[file.level] as TableFile[]).push(file);
  }
  for (const [index, files] of levels.entries()) {
    if (index === 0) files.sort((a, b) => b.number - a.number);
    else files.sort((a, b) => Buffer.compare(userKeyOf(a.smallest), userKeyOf(b.smallest)));
  }
  return {
    rocksdbOnly,
    comparator: family.comparator,
    logNumber: family.logNumber,
    prevLogNumber,
    lastSequence,
    nextFileNumber,
    levels,
    otherColumnFamilies: [...families.values()].filter((f) => f !== family).map((f) => f.name),
    blobFiles,
  };
}

export const userKeyOf = (internalKey: Buffer): Buffer =>
  internalKey.subarray(0, internalKey.length - 8);
