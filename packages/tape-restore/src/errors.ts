import { BlockIoError, type BlockIoErrorOptions } from '@x/blockio';

/** Stable codes for tape restore problems, on top of BlockIoError's own codes. */
export type TapeRestoreErrorCode =
  /** A magic number is not the one the structure must start with. */
  | 'BAD_MAGIC'
  /** A tape block is malformed: sequence number, size, trailing data, truncated. */
  | 'BAD_BLOCK'
  /** A tape file ends (filemark) before its END_OF_STREAM block. */
  | 'NO_END_MARKER'
  /** A stream or structure ends before the bytes it announces. */
  | 'TRUNCATED'
  /** A DataBlob's CRC-32 does not match its data. */
  | 'BAD_CRC'
  /** A chunk's SHA-256 is not the digest it is stored under. */
  | 'BAD_DIGEST'
  /** A DataBlob that cannot be decoded (length, compression). */
  | 'BAD_BLOB'
  /** A `.fidx`/`.didx` index file is malformed. */
  | 'BAD_INDEX'
  /** A manifest (`index.json.blob`) does not parse or names unsafe files. */
  | 'BAD_MANIFEST'
  /** A media catalog (`<uuid>.log`) breaks a record or ordering rule. */
  | 'BAD_CATALOG'
  /** `inventory.json` does not parse, or a media set cannot be assembled from it. */
  | 'BAD_INVENTORY'
  /** A snapshot, group or namespace name is not valid (`..`, absolute, bad time). */
  | 'BAD_SNAPSHOT_NAME'
  /** A pxar archive is malformed, holds something but regular files, or escapes. */
  | 'BAD_PXAR'
  /** A JSON header or label does not parse or lacks fields. */
  | 'BAD_HEADER'
  /** A tape file holds another kind of content than the restore expects there. */
  | 'UNEXPECTED_FILE'
  /** The tape asked for is not in the drive (no such virtual tape or dump). */
  | 'MEDIA_NOT_FOUND'
  /** A tape belongs to another media set than the one being restored. */
  | 'WRONG_MEDIA_SET'
  /** A member of the media set is missing from the inventory or its catalog is missing. */
  | 'MEDIA_SET_INCOMPLETE'
  /** A file number past the end of the recorded data. */
  | 'END_OF_DATA'
  /** A lock is held by another process. */
  | 'LOCKED'
  /** The target group belongs to another owner. */
  | 'OWNER_MISMATCH'
  /** The target snapshot directory exists already. */
  | 'SNAPSHOT_EXISTS'
  /** A datastore path is not a datastore, or no datastore was given for a store. */
  | 'BAD_DATASTORE'
  /** A format version this restore does not read (v1.0 archives, encrypted media sets). */
  | 'UNSUPPORTED';

/** Where on tape a problem is: the tape's label, the file number and block within it. */
export interface TapeLocation {
  /** Label text of the tape. */
  tape?: string | undefined;
  /** Tape file number (0 = media label). */
  fileNumber?: number | undefined;
  /** Block index within the tape file (262144-byte blocks). */
  block?: number | undefined;
}

export interface TapeRestoreErrorOptions extends BlockIoErrorOptions, TapeLocation {}

/**
 * The one error class of @x/tape-restore: a stable code, plus where it happened —
 * the tape, the tape file and block, the host file and byte offset, the structure.
 */
export class TapeRestoreError extends BlockIoError {
  readonly tape: string | undefined;
  readonly fileNumber: number | undefined;
  readonly block: number | undefined;

  constructor(code: TapeRestoreErrorCode, message: string, options: TapeRestoreErrorOptions = {}) {
    super(code, message, options);
    this.tape = options.tape;
    this.fileNumber = options.fileNumber;
    this.block = options.block;
  }

  override describe(): string {
    const where: string[] = [];
    if (this.tape !== undefined) where.push(`tape ${this.tape}`);
    if (this.fileNumber !== undefined) where.push(`file ${this.fileNumber}`);
    if (this.block !== undefined) where.push(`block ${this.block}`);
    const base = super.describe();
    return where.length > 0 ? `${where.join(' ')}: ${base}` : base;
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      tape: this.tape,
      fileNumber: this.fileNumber,
      block: this.block,
    };
  }
}
