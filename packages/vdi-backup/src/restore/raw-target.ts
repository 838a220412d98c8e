import { copy, createOutputFile, FileDevice, refuseSameFile } from '@x/blockio';
import { applyBackup } from './apply-backup.js';
import type { PreparedTarget } from './prepared-target.js';

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

/** base + stream → a new file: a sparse copy of the base, the records over it, then the rename. */
export async function prepareRawTarget(target: RawRestoreTarget): Promise<PreparedTarget> {
  await refuseSameFile(target.output, [target.base]);
  const base = await FileDevice.open(target.base);
  return {
    imageSize: base.size,
    files: [target.output, target.base],
    async apply(reader, options) {
      // Created 0600 (createOutputFile's default): the restored image holds the disk's data.
      const output = await createOutputFile(target.output, {
        overwrite: target.overwrite ?? false,
        sync: target.sync ?? true,
        size: base.size,
        inputs: [target.base],
      });
      try {
        await copy(base, output.device, { signal: options.signal, onProgress: options.onProgress });
        const result = await applyBackup(reader, output.device, options);
        await output.commit();
        return { ...result, describe: { output: target.output } };
      } catch (error) {
        await output.abort();
        throw error;
      }
    },
    close: () => base.close(),
  };
}
