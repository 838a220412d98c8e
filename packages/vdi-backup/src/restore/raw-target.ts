import { copy, createOutputFile, FileDevice, type LongRunningOptions } from '@x/blockio';
import type { BackupReader } from '../stream/backup-reader.js';
import { type ApplyResult, applyBackup } from './apply-backup.js';
import { refuseSameFile } from './same-file.js';

export interface RawRestoreTarget {
  type: 'raw';
  /** The base image (the "from" of the backup); read-only. */
  base: string;
  /** The restored image: a new file, written as `<output>.partial` and renamed when complete. */
  output: string;
  /** Replace an existing output. Default false. */
  overwrite?: boolean | undefined;
  /** fsync before the rename. Default true. */
  sync?: boolean | undefined;
}

/** Opens the base of a raw restore (its size bounds the stream). */
export function openRawBase(target: RawRestoreTarget): Promise<FileDevice> {
  return FileDevice.open(target.base);
}

/** base + stream → a new file: a sparse copy of the base, the records over it, then the rename. */
export async function restoreRaw(
  reader: BackupReader,
  base: FileDevice,
  target: RawRestoreTarget,
  options: LongRunningOptions,
): Promise<ApplyResult> {
  await refuseSameFile(target.output, [target.base, reader.name]);
  const output = await createOutputFile(target.output, {
    overwrite: target.overwrite ?? false,
    sync: target.sync ?? true,
    size: base.size,
  });
  try {
    await copy(base, output.device, { signal: options.signal, onProgress: options.onProgress });
    const result = await applyBackup(reader, output.device, options);
    await output.commit();
    return result;
  } catch (error) {
    await output.abort();
    throw error;
  }
}
