import { kvError, type Location } from './errors.js';

/** An internal key split into its user key, sequence number and value type. */
export interface DecodedInternalKey {
  readonly userKey: Buffer;
  readonly sequence: number;
  readonly type: number;
}

/**
 * Splits an internal key (dbformat.h): the user key, then a fixed64 trailer holding
 * `sequence << 8 | type`. The user key is a view into `key`.
 */
export function decodeInternalKey(
  key: Buffer,
  where: Location,
  offset = where.offset,
): DecodedInternalKey {
  const length = key.length;
  if (length < 8) {
    const message = `an internal key of ${length} bytes (at least 8: user key + trailer)`;
    throw kvError('BAD_BLOCK', message, { ...where, offset });
  }
  const high = key[length - 1] as number;
  if (high >= 0x20) {
    throw kvError('UNSUPPORTED', 'a sequence number at or above 2^53', { ...where, offset });
  }
  const sequence = key.readUIntLE(length - 7, 6) + high * 2 ** 48;
  return { userKey: key.subarray(0, length - 8), sequence, type: key[length - 8] as number };
}

/** Compares the user-key part of an internal key with a user key. */
export function compareUserKeys(internalKey: Buffer, userKey: Buffer, where: Location): number {
  if (internalKey.length < 8) decodeInternalKey(internalKey, where);
  return Buffer.compare(internalKey.subarray(0, internalKey.length - 8), userKey);
}
