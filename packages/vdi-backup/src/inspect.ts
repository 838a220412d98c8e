import type { BlockDevice } from '@x/blockio';
import { BackupReader, type BackupRecord, type BackupSummary } from './stream/backup-reader.js';

export interface InspectOptions {
  /** Object size the records are checked against. Default 4 MiB. */
  objectSize?: number | undefined;
  /** Called for every record, in stream order (for listings that must not be held in memory). */
  onRecord?: ((record: BackupRecord) => void | Promise<void>) | undefined;
}

export interface BackupInspection extends BackupSummary {
  objectSize: number;
  /** Changed objects as inclusive [first, last] idx runs: [[0, 1], [5, 5]]. */
  changedObjects: Array<[number, number]>;
}

/** Validates a stream and describes it: layout, records, byte counts, which objects changed. */
export async function inspectBackup(
  source: string | BlockDevice,
  options: InspectOptions = {},
): Promise<BackupInspection> {
  const reader = await BackupReader.open(source, { objectSize: options.objectSize });
  try {
    const changedObjects: Array<[number, number]> = [];
    for await (const record of reader.records()) {
      const last = changedObjects.at(-1);
      if (last && record.idx <= last[1] + 1) last[1] = record.idx;
      else changedObjects.push([record.idx, record.idx]);
      await options.onRecord?.(record);
    }
    return { ...reader.summary, objectSize: reader.objectSize, changedObjects };
  } finally {
    await reader.close();
  }
}

export interface VerifyOptions {
  /** Object size of the VDI or image the stream is for. Default 4 MiB. */
  objectSize?: number | undefined;
  /** Size of the disk it will be applied to: records past it fail with TOO_LARGE. */
  imageSize?: number | undefined;
}

/**
 * The structural checks a restore makes before writing, alone: header, every record
 * (alignment, inside its object and the disk, order, no overlap), the end exactly at
 * EOF. Resolves to the summary; throws the first problem as a typed error.
 */
export async function verifyBackup(
  source: string | BlockDevice,
  options: VerifyOptions = {},
): Promise<BackupSummary & { objectSize: number }> {
  const reader = await BackupReader.open(source, options);
  await reader.close();
  return { ...reader.summary, objectSize: reader.objectSize };
}
