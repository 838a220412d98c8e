import type { LongRunningOptions } from '@x/blockio';
import type { BackingPolicy } from '@x/qcow2/read';
import { VdiBackupError } from '../errors.js';
import type { BackupReader } from '../stream/backup-reader.js';
import { applyBackup } from './apply-backup.js';
import type { PreparedTarget, TargetResult } from './prepared-target.js';

export interface Qcow2RestoreTarget {
  type: 'qcow2';
  /** The QCOW2 image; written in place. */
  image: string;
  /** The base snapshot (id if all digits, else name); absent: the active layer as it is. */
  base?: string | undefined;
  /**
   * Store the result as a new internal snapshot of this name; the active layer is left as
   * it was. Absent: the result becomes the active layer (what it held is replaced).
   */
  as?: string | undefined;
  /** Backing files are followed by default (a partial cluster write copies the rest from them). */
  backingPolicy?: BackingPolicy | undefined;
}

/**
 * base snapshot + stream → a new internal snapshot (`as`) or the active layer, through
 * @x/qcow2's public snapshot operations: the active layer is kept in a temporary snapshot
 * while the base is reverted to, the records written and the new snapshot taken, then put
 * back and the temporary snapshot deleted. Everything that can be checked without writing
 * (the base exists, the name is free, the stream fits) is checked first.
 */
export async function prepareQcow2Target(target: Qcow2RestoreTarget): Promise<PreparedTarget> {
  const qcow2 = await import('@x/qcow2');
  const backingPolicy = target.backingPolicy ?? 'allow';
  const snapshots = await qcow2.listSnapshots(target.image);
  let imageSize: number;
  if (target.base !== undefined) {
    const base = qcow2.findSnapshot(snapshots, target.base, target.image);
    imageSize = base.diskSize;
  } else {
    const image = await qcow2.openQcow2(target.image, { backingPolicy });
    imageSize = image.size;
    await image.close();
  }
  if (target.as !== undefined && snapshots.some((snapshot) => snapshot.name === target.as)) {
    throw new VdiBackupError('EEXIST', `the image already has a snapshot named "${target.as}"`, {
      path: target.image,
      structure: 'snapshot table',
    });
  }

  const writeRecords = async (reader: BackupReader, options: LongRunningOptions) => {
    const image = await qcow2.openQcow2(target.image, { writable: true, backingPolicy });
    try {
      const applied = await applyBackup(reader, image, options);
      const made = target.as === undefined ? undefined : await image.createSnapshot(target.as);
      return { applied, made };
    } finally {
      await image.close();
    }
  };

  return {
    imageSize,
    files: [target.image],
    async apply(reader, options): Promise<TargetResult> {
      const describe: Record<string, string | number> = { image: target.image };
      if (target.as === undefined) {
        if (target.base !== undefined) await qcow2.applySnapshot(target.image, target.base);
        const { applied } = await writeRecords(reader, options);
        return { ...applied, describe: { ...describe, result: 'active layer' } };
      }
      const keepName = `vdi-backup-keep-${process.getBuiltinModule('node:crypto').randomBytes(6).toString('hex')}`;
      const keep = await qcow2.createSnapshot(target.image, keepName);
      try {
        if (target.base !== undefined) await qcow2.applySnapshot(target.image, target.base);
        const { applied, made } = await writeRecords(reader, options);
        await qcow2.applySnapshot(target.image, keep.id);
        await qcow2.deleteSnapshot(target.image, keep.id);
        return {
          ...applied,
          describe: { ...describe, snapshot: target.as, 'snapshot-id': made?.id ?? '' },
        };
      } catch (error) {
        // Put the active layer back as it was; the snapshot we kept it in goes too.
        await qcow2
          .applySnapshot(target.image, keep.id)
          .then(() => qcow2.deleteSnapshot(target.image, keep.id))
          .catch(() => {});
        throw error;
      }
    },
    close: async () => {},
  };
}
