import { stat } from 'node:fs/promises';
import { type BlockDevice, type LongRunningOptions, refuseSameFile } from '@x/blockio';
import { BackupReader } from '../stream/backup-reader.js';
import { spoolToTempFile } from '../stream/spool.js';
import type { PreparedTarget } from './prepared-target.js';
import { prepareQcow2Target, type Qcow2RestoreTarget } from './qcow2-target.js';
import { prepareRawTarget, type RawRestoreTarget } from './raw-target.js';
import type { SheepdogRestoreTarget } from './sheepdog-target-types.js';

/** A stream to restore: a file, an open device, or a readable stream (spooled first). */
export type BackupSource = string | BlockDevice | NodeJS.ReadableStream;

export type RestoreTarget = RawRestoreTarget | Qcow2RestoreTarget | SheepdogRestoreTarget;

export interface RestoreOptions extends LongRunningOptions {
  /** Object size of the stream. Default 4 MiB (Sheepdog targets use the base's own). */
  objectSize?: number | undefined;
  /** Where a readable stream is spooled. Default: the system temp directory. */
  spoolDirectory?: string | undefined;
}

export interface RestoreResult {
  records: number;
  /** Bytes of record data written. */
  bytesWritten: number;
  /** Stream bytes validated. */
  streamBytes: number;
  layout: BackupReader['layout'];
  /** What was made: the output file, the new snapshot, the new VDI ids. */
  describe: Record<string, string | number>;
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
  const spooled = isReadable(stream)
    ? await spoolToTempFile(stream, { signal: options.signal, directory: options.spoolDirectory })
    : undefined;
  const source = spooled ? spooled.path : (stream as string | BlockDevice);
  try {
    const prepared = await prepareTarget(target);
    try {
      // The target is written while the stream is read: it must not be the stream (SAME_FILE).
      if (typeof source === 'string') {
        for (const file of prepared.files) await refuseSameFile(file, [source]);
      }
      const reader = await BackupReader.open(source, {
        objectSize: prepared.objectSize ?? options.objectSize,
        imageSize: prepared.imageSize,
      });
      try {
        const result = await prepared.apply(reader, options);
        return { ...result, streamBytes: reader.summary.streamBytes, layout: reader.layout };
      } finally {
        await reader.close();
      }
    } finally {
      await prepared.close();
    }
  } finally {
    await spooled?.remove();
  }
}

async function prepareTarget(target: RestoreTarget): Promise<PreparedTarget> {
  switch (target.type) {
    case 'raw':
      return prepareRawTarget(target);
    case 'qcow2':
      return prepareQcow2Target(target);
    case 'sheepdog': {
      const { prepareSheepdogTarget } = await import('../sheepdog/sheepdog-target.js');
      return prepareSheepdogTarget(target);
    }
  }
}

function isReadable(stream: BackupSource): stream is NodeJS.ReadableStream {
  return typeof stream !== 'string' && typeof (stream as BlockDevice).size !== 'number';
}

/** What `vdi-backup restore` makes of a target argument: a URL, a QCOW2 image, or a raw file. */
export async function targetKind(target: string): Promise<RestoreTarget['type']> {
  if (target.startsWith('sheepdog://')) return 'sheepdog';
  const exists = await stat(target).catch(() => undefined);
  if (!exists?.isFile()) return 'raw';
  const { detectFormat } = await import('@x/qcow2/read');
  return (await detectFormat(target)) === 'qcow2' ? 'qcow2' : 'raw';
}
