import { kTypeDeletion, kTypeMerge, kTypeSingleDeletion, kTypeValue } from './format/constants.js';

/** One version of a key: what a table entry or a log record says about it. */
export interface InternalEntry {
  readonly userKey: Buffer;
  /** Sequence number (56 bits on disk; this reader refuses values above 2^53 - 1). */
  readonly sequence: number;
  /** ValueType: kTypeValue, kTypeDeletion, kTypeSingleDeletion, kTypeMerge … */
  readonly type: number;
  readonly value: Buffer;
}

/** A RocksDB range tombstone: deletes [start, end) for entries older than `sequence`. */
export interface RangeTombstone {
  readonly start: Buffer;
  readonly end: Buffer;
  readonly sequence: number;
}

/** Internal key order: user key ascending, then newest (highest sequence) first. */
export function compareInternal(a: InternalEntry, b: InternalEntry): number {
  const byKey = Buffer.compare(a.userKey, b.userKey);
  if (byKey !== 0) return byKey;
  if (a.sequence !== b.sequence) return b.sequence - a.sequence;
  return b.type - a.type;
}

export const isDeletion = (type: number): boolean =>
  type === kTypeDeletion || type === kTypeSingleDeletion;

export const POINT_TYPES = new Set([kTypeValue, kTypeDeletion, kTypeSingleDeletion, kTypeMerge]);
