import { VdiBackupError } from '../errors.js';
import { BACKUP_END_IDX, SECTOR_SIZE } from '../format/stream-format.js';

export interface RecordRules {
  objectSize: number;
  /** Size of the disk the stream applies to, when known. */
  imageSize?: number | undefined;
}

interface RecordFields {
  readonly number: number;
  readonly idx: number;
  readonly offset: number;
  readonly length: number;
  readonly reserved: number;
  readonly headerOffset: number;
}

/**
 * The rules dog never checks (formats/sheepdog.md §1.4), applied record by record in
 * stream order: sector alignment, a non-empty range inside one object and inside the
 * image, (idx, offset) strictly increasing without overlap. Counts what it saw.
 */
export class RecordValidator {
  readonly #rules: RecordRules;
  readonly #path: string;
  #previousIdx = -1;
  #previousEnd = 0;
  #records = 0;
  #dataBytes = 0;
  #objects = 0;
  #reservedNonZero = 0;
  #minimumImageSize = 0;

  constructor(rules: RecordRules, path: string) {
    this.#rules = rules;
    this.#path = path;
  }

  describe(record: Pick<RecordFields, 'number' | 'idx' | 'offset' | 'length'>): string {
    return `record ${record.number} (idx ${record.idx}, offset ${record.offset}, length ${record.length})`;
  }

  check(record: RecordFields): void {
    const { objectSize, imageSize } = this.#rules;
    const fail = (code: 'BAD_RECORD' | 'UNSORTED' | 'TOO_LARGE', message: string) =>
      new VdiBackupError(code, message, {
        path: this.#path,
        offset: record.headerOffset,
        structure: this.describe(record),
      });
    if (record.offset % SECTOR_SIZE !== 0 || record.length % SECTOR_SIZE !== 0) {
      throw fail('BAD_RECORD', 'offset and length must be multiples of 512');
    }
    if (record.length === 0) throw fail('BAD_RECORD', 'a record must hold at least one sector');
    if (record.idx === BACKUP_END_IDX) {
      throw fail('BAD_RECORD', 'idx 0xffffffff is the end marker, not an object');
    }
    if (record.offset + record.length > objectSize) {
      throw fail(
        'BAD_RECORD',
        `offset + length = ${record.offset + record.length} is past the end of a ${objectSize}-byte object (wrong object size?)`,
      );
    }
    if (
      record.idx < this.#previousIdx ||
      (record.idx === this.#previousIdx && record.offset < this.#previousEnd)
    ) {
      throw fail(
        'UNSORTED',
        record.idx === this.#previousIdx
          ? `overlaps or precedes the previous record of object ${record.idx}, which ends at ${this.#previousEnd}`
          : `comes after a record of object ${this.#previousIdx}: records must be in increasing (idx, offset) order`,
      );
    }
    const end = record.idx * objectSize + record.offset + record.length;
    if (!Number.isSafeInteger(end)) {
      throw fail('TOO_LARGE', 'the record lies beyond 2^53 - 1 bytes');
    }
    if (imageSize !== undefined && end > imageSize) {
      throw fail(
        'TOO_LARGE',
        `the record ends at byte ${end} of the disk, past its ${imageSize} bytes: the stream is for a larger disk (or another object size); if the disk grew after the base was taken, grow the base with zeros to the stream's minimum image size (inspect reports it) first`,
      );
    }
    if (record.idx !== this.#previousIdx) this.#objects++;
    this.#previousIdx = record.idx;
    this.#previousEnd = record.offset + record.length;
    this.#records++;
    this.#dataBytes += record.length;
    if (record.reserved !== 0) this.#reservedNonZero++;
    this.#minimumImageSize = end;
  }

  totals(streamBytes: number) {
    return {
      streamBytes,
      records: this.#records,
      dataBytes: this.#dataBytes,
      objects: this.#objects,
      reservedNonZero: this.#reservedNonZero,
      minimumImageSize: this.#minimumImageSize,
    };
  }
}
