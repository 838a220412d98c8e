import type { BlockDevice } from '@x/blockio';
import { type BackupOutput, BackupWriter } from '../stream/backup-writer.js';
import {
  checkDiffArguments,
  type DiffOptions,
  type DiffStats,
  diffObjects,
} from './diff-objects.js';

export interface CreateBackupOptions extends DiffOptions {
  /** A file (written as `<file>.partial`, renamed when complete) or a writable stream. */
  output: BackupOutput;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  /** fsync a file output before renaming it. Default true. */
  sync?: boolean | undefined;
  /** Files `from` and `to` were read from: a file output that is one of them is refused (`SAME_FILE`). */
  inputs?: readonly string[] | undefined;
}

export interface CreateBackupResult extends DiffStats {
  objectSize: number;
  /** Bytes of the stream (header, records, end record). */
  streamBytes: number;
}

/**
 * `dog vdi backup -F from -s to` over any two block devices: writes the stream of what
 * changed from `from` to `to`, byte-compatible with dog 1.0.1. Objects both sides leave
 * unallocated (per `extents()`) or store in the same place (`sharedRanges`) are never read.
 */
export async function createBackup(
  from: BlockDevice,
  to: BlockDevice,
  options: CreateBackupOptions,
): Promise<CreateBackupResult> {
  const objectSize = checkDiffArguments(from, to, options.objectSize);
  const stats: DiffStats = {
    objects: 0,
    objectsSkippedUnallocated: 0,
    objectsSkippedShared: 0,
    objectsCompared: 0,
    records: 0,
    bytesRead: 0,
    bytesSkipped: 0,
    dataBytes: 0,
  };
  const writer = await BackupWriter.create(options.output, {
    objectSize,
    overwrite: options.overwrite,
    sync: options.sync,
    inputs: options.inputs,
  });
  try {
    for await (const record of diffObjects(from, to, stats, { ...options, objectSize })) {
      // The record's data stays valid while the next one is made (DiffRecord).
      await writer.writeRecord(record.idx, record.offset, record.data, { dataStays: true });
    }
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return { ...stats, objectSize, streamBytes: writer.bytesWritten };
}
