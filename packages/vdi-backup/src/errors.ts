import { BlockIoError, type BlockIoErrorOptions } from '@x/blockio';

/** Stable codes for backup-stream and Sheepdog problems, on top of BlockIoError's own codes. */
export type VdiBackupErrorCode =
  /** The stream does not start with version 1 and magic 0x11921192 (either layout). */
  | 'BAD_MAGIC'
  /** The magic is right but the version is not 1. */
  | 'BAD_VERSION'
  /** The stream ends inside a record header or its data, or before the end record. */
  | 'TRUNCATED'
  /** A record breaks a rule: alignment, zero length, past the object or the image. */
  | 'BAD_RECORD'
  /** Records out of (idx, offset) order, or two records overlapping. */
  | 'UNSORTED'
  /** Bytes after the end record (or after the 2012 layout's last record). */
  | 'TRAILING_DATA'
  /** The stream reaches past the end of the image it is applied to. */
  | 'TOO_LARGE'
  /** An object size that is not a power of two in the supported range. */
  | 'BAD_OBJECT_SIZE'
  /** A QCOW2 snapshot, Sheepdog VDI or Sheepdog snapshot that does not exist. */
  | 'NO_SUCH_SNAPSHOT'
  | 'NO_SUCH_VDI'
  /** The working VDI holds writes that are in no snapshot; restoring would discard them. */
  | 'WORKING_VDI_CHANGED'
  /** The sheep daemon answered with an error result. */
  | 'SHEEP_ERROR'
  /** The sheep daemon broke the protocol, closed the connection or could not be reached. */
  | 'SHEEP_PROTOCOL'
  | 'SHEEP_UNREACHABLE'
  /** A name, snapshot or option the tool refuses (exists already, wrong kind of source). */
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED'
  | 'EEXIST';

export class VdiBackupError extends BlockIoError {
  constructor(code: VdiBackupErrorCode, message: string, options: BlockIoErrorOptions = {}) {
    super(code, message, options);
  }
}
