import type { LongRunningOptions } from '@x/blockio';
import type { BackupReader } from '../stream/backup-reader.js';

/** What a restore wrote, and target-specific facts for people (the new snapshot, …). */
export interface TargetResult {
  records: number;
  bytesWritten: number;
  describe: Record<string, string | number>;
}

/**
 * A restore target after the checks that need no writing (the base exists, the names are
 * free): it says what the stream must fit, then applies a validated stream.
 */
export interface PreparedTarget {
  /** Size of the base: records past it are refused before anything is written. */
  readonly imageSize: number;
  /** The object size the target dictates (a Sheepdog VDI's), if any. */
  readonly objectSize?: number | undefined;
  /** The files the stream must not be (a raw output, a QCOW2 image). */
  readonly files: readonly string[];
  apply(reader: BackupReader, options: LongRunningOptions): Promise<TargetResult>;
  close(): Promise<void>;
}
