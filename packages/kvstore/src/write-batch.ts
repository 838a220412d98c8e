import { Cursor } from './cursor.js';
import { kvError, type Location } from './errors.js';
import {
  kTypeBeginPersistedPrepareXID,
  kTypeBeginPrepareXID,
  kTypeBeginUnprepareXID,
  kTypeBlobIndex,
  kTypeColumnFamilyBlobIndex,
  kTypeColumnFamilyDeletion,
  kTypeColumnFamilyMerge,
  kTypeColumnFamilyRangeDeletion,
  kTypeColumnFamilySingleDeletion,
  kTypeColumnFamilyValue,
  kTypeColumnFamilyWideColumnEntity,
  kTypeCommitXID,
  kTypeCommitXIDAndTimestamp,
  kTypeDeletion,
  kTypeDeletionWithTimestamp,
  kTypeEndPrepareXID,
  kTypeLogData,
  kTypeMerge,
  kTypeNoop,
  kTypeRangeDeletion,
  kTypeRollbackXID,
  kTypeSingleDeletion,
  kTypeValue,
  kTypeWideColumnEntity,
  kWriteBatchHeader,
} from './format/constants.js';
import { WRITE_BATCH_HEADER } from './format/structs.js';
import type { InternalEntry, RangeTombstone } from './internal-key.js';

/** What one write batch does to the default column family. */
export interface DecodedBatch {
  readonly entries: InternalEntry[];
  readonly rangeTombstones: RangeTombstone[];
}

/**
 * Decodes a write batch (LevelDB write_batch.cc, RocksDB db/write_batch.cc) as the
 * memtable inserter applies it: every counted record takes the next sequence
 * number, whatever its column family; only records of the default column family
 * (id 0) are kept. Log data and no-ops take none. Prepared (2PC) transactions, merge
 * operands, blob indexes and wide columns are refused rather than guessed at.
 */
export function decodeWriteBatch(data: Buffer, where: Location): DecodedBatch {
  if (data.length < kWriteBatchHeader) {
    throw kvError(
      'BAD_WRITE_BATCH',
      `a write batch needs a ${kWriteBatchHeader}-byte header, the record has ${data.length} bytes`,
      { ...where, structure: 'write batch header' },
    );
  }
  const header = WRITE_BATCH_HEADER.decode(data);
  if (header.sequence > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw kvError('UNSUPPORTED', `sequence number ${header.sequence} is beyond 2^53 - 1`, where);
  }
  const cursor = new Cursor(
    data,
    { ...where, structure: 'write batch' },
    'BAD_WRITE_BATCH',
    kWriteBatchHeader,
  );
  const entries: InternalEntry[] = [];
  const rangeTombstones: RangeTombstone[] = [];
  let sequence = Number(header.sequence);
  let counted = 0;
  while (!cursor.done) {
    const recordStart = cursor.position;
    const tag = cursor.u8('record type');
    let family = 0;
    switch (tag) {
      case kTypeColumnFamilyValue:
      case kTypeColumnFamilyDeletion:
      case kTypeColumnFamilySingleDeletion:
      case kTypeColumnFamilyRangeDeletion:
      case kTypeColumnFamilyMerge:
      case kTypeColumnFamilyBlobIndex:
      case kTypeColumnFamilyWideColumnEntity:
        family = cursor.varint32('column family');
        break;
      default:
    }
    switch (tag) {
      case kTypeValue:
      case kTypeColumnFamilyValue: {
        const key = cursor.lengthPrefixed('key');
        const value = cursor.lengthPrefixed('value');
        if (family === 0) {
          entries.push({
            userKey: view(key),
            sequence,
            type: kTypeValue,
            value: view(value),
          });
        }
        break;
      }
      case kTypeDeletion:
      case kTypeColumnFamilyDeletion:
      case kTypeSingleDeletion:
      case kTypeColumnFamilySingleDeletion: {
        const key = cursor.lengthPrefixed('key');
        if (family === 0) {
          entries.push({ userKey: view(key), sequence, type: kTypeDeletion, value: EMPTY });
        }
        break;
      }
      case kTypeRangeDeletion:
      case kTypeColumnFamilyRangeDeletion: {
        const start = cursor.lengthPrefixed('range start');
        const end = cursor.lengthPrefixed('range end');
        if (family === 0) rangeTombstones.push({ start: view(start), end: view(end), sequence });
        break;
      }
      case kTypeMerge:
      case kTypeColumnFamilyMerge:
      case kTypeBlobIndex:
      case kTypeColumnFamilyBlobIndex:
      case kTypeWideColumnEntity:
      case kTypeColumnFamilyWideColumnEntity: {
        const key = cursor.lengthPrefixed('key');
        cursor.lengthPrefixed('value');
        if (family === 0) {
          throw kvError(
            'UNSUPPORTED',
            `record type 0x${tag.toString(16)} (merge operand, blob index or wide column) for key ${hexKey(key)} is not supported`,
            { ...where, offset: where.offset + recordStart, structure: 'write batch record' },
          );
        }
        break;
      }
      case kTypeLogData:
        cursor.lengthPrefixed('log data');
        continue;
      case kTypeNoop:
        continue;
      case kTypeBeginPrepareXID:
      case kTypeBeginPersistedPrepareXID:
      case kTypeBeginUnprepareXID:
      case kTypeEndPrepareXID:
      case kTypeCommitXID:
      case kTypeCommitXIDAndTimestamp:
      case kTypeRollbackXID:
      case kTypeDeletionWithTimestamp:
        throw kvError(
          'UNSUPPORTED',
          `record type 0x${tag.toString(16)} (transactions or user timestamps) is not supported`,
          { ...where, offset: where.offset + recordStart, structure: 'write batch record' },
        );
      default:
        throw kvError('BAD_WRITE_BATCH', `unknown write batch record type 0x${tag.toString(16)}`, {
          ...where,
          offset: where.offset + recordStart,
          structure: 'write batch record',
        });
    }
    sequence++;
    counted++;
  }
  if (counted !== header.count) {
    throw kvError(
      'BAD_WRITE_BATCH',
      `the header counts ${header.count} records, the batch holds ${counted}`,
      { ...where, structure: 'write batch header' },
    );
  }
  return { entries, rangeTombstones };
}

const EMPTY = Buffer.alloc(0);

/**
 * Keys and values stay views into the record: the log reader gives every record a
 * buffer of its own, and the memtable keeps all of them anyway (halves the allocations
 * of a large log replay).
 */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

export function hexKey(key: Uint8Array): string {
  const hex = Buffer.from(key.buffer, key.byteOffset, Math.min(key.length, 64)).toString('hex');
  return key.length > 64 ? `0x${hex}…` : `0x${hex}`;
}
