import type { BlockDevice, LongRunningOptions } from '@x/blockio';
import { BackupReader } from '../stream/backup-reader.js';
import { spoolToTempFile } from '../stream/spool.js';
import type { ApplyResult } from './apply-backup.js';
import { openRawBase, type RawRestoreTarget, restoreRaw } from './raw-target.js';

/** A stream to restore: a file, an open device, or a readable stream (spooled first). */
export type BackupSource = string | BlockDevice | NodeJS.ReadableStream;

export type RestoreTarget = RawRestoreTarget;

export interface RestoreOptions extends LongRunningOptions {
  /** Object size of the stream. Default 4 MiB (Sheepdog targets use the base's own). */
  objectSize?: number | undefined;
  /** Where a readable stream is spooled. Default: the system temp directory. */
  spoolDirectory?: string | undefined;
}

export interface RestoreResult extends ApplyResult {
  /** Stream bytes validated. */
  streamBytes: number;
  layout: BackupReader['layout'];
}

/**
 * Applies a backup stream to the base it was made from, into a target, validating the
 * whole stream (and that it fits the base) before the first write: a bad stream leaves
 * the target untouched. A readable stream is spooled to a temporary file first.
 */
export async function restoreBackup(
  stream: BackupSource,
  target: RestoreTarget,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const spooled =
    typeof stream === 'string' ||
    ('read' in stream && typeof (stream as BlockDevice).size === 'number')
      ? undefined
      : await spoolToTempFile(stream as NodeJS.ReadableStream, {
          signal: options.signal,
          directory: options.spoolDirectory,
        });
  const source = spooled ? spooled.path : (stream as string | BlockDevice);
  try {
    const base = await openRawBase(target);
    try {
      const reader = await BackupReader.open(source, {
        objectSize: options.objectSize,
        imageSize: base.size,
      });
      try {
        const result = await restoreRaw(reader, base, target, options);
        return { ...result, streamBytes: reader.summary.streamBytes, layout: reader.layout };
      } finally {
        await reader.close();
      }
    } finally {
      await base.close();
    }
  } finally {
    await spooled?.remove();
  }
}
