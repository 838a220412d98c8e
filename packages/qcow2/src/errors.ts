import { BlockIoError, type BlockIoErrorOptions } from '@x/blockio';

/** Stable codes for QCOW2 problems, on top of BlockIoError's own codes. */
export type Qcow2ErrorCode =
  /** The file does not start with the QCOW2 magic. */
  | 'NOT_QCOW2'
  /** A version, feature, cluster size or refcount width we do not handle. */
  | 'UNSUPPORTED'
  /** The image is encrypted; we detect it and refuse rather than return ciphertext. */
  | 'ENCRYPTED'
  /** A structure on disk is invalid (unaligned, out of the file, inconsistent). */
  | 'CORRUPT'
  /** A header field asks for more than the limits QEMU itself enforces. */
  | 'TOO_LARGE'
  /** A compressed cluster did not inflate to exactly one cluster. */
  | 'DECOMPRESS_FAILED'
  /** zlib (pako) or libzstd failed to compress a cluster being written compressed. */
  | 'COMPRESS_FAILED'
  /** The image names a backing file and the backing policy forbids opening it. */
  | 'BACKING_DENIED'
  /** The backing chain refers back to itself or is absurdly deep. */
  | 'BACKING_LOOP'
  /** The image changed under us while we were reading it. */
  | 'CHANGED'
  /** No snapshot with that id or name. */
  | 'NO_SUCH_SNAPSHOT'
  /** The header's corrupt bit is set and the operation would write. */
  | 'MARKED_CORRUPT'
  /** The image's refcounts are stale (dirty bit) and the operation needs them. */
  | 'DIRTY'
  /** A snapshot's own tables are damaged, so it cannot be reverted to. */
  | 'SNAPSHOT_DAMAGED'
  /** Shrinking would drop data the guest has past the new end (and was not asked to). */
  | 'WOULD_LOSE_DATA';

export class Qcow2Error extends BlockIoError {
  constructor(code: Qcow2ErrorCode, message: string, options: BlockIoErrorOptions = {}) {
    super(code, message, options);
  }
}
