import type { LongRunningOptions } from '@x/blockio';
import type { InventoryEntry, MediaSet } from '../catalog/inventory.js';
import { readTapeLabels } from '../decode/labels.js';
import { TapeRestoreError } from '../errors.js';
import type { TapeDrive } from '../tape/tape-drive.js';

/** Where task-log lines go (PBS's task log: `File 3: chunk archive for datastore 'x'`). */
export type TaskLog = (line: string) => void;

export interface RestoreBaseOptions extends LongRunningOptions {
  /** The drive holding the tapes (see openTapeDrive). */
  drive: TapeDrive;
  /** PBS's tape status directory: `inventory.json` and `<media-uuid>.log`. */
  statusDir: string;
  /** The media set to restore from. */
  mediaSetUuid: string;
  /** Task-log lines, as PBS prints them. */
  log?: TaskLog | undefined;
}

// The tape each drive holds whose labels were checked: staying on it needs no re-check.
const verified = new WeakMap<TapeDrive, string>();

/**
 * Loads a member of the media set into the drive and checks its labels: the media
 * label's uuid and the media-set label's uuid and position must be the inventory's.
 */
export async function loadMember(
  drive: TapeDrive,
  member: InventoryEntry,
  mediaSet: MediaSet,
  log: TaskLog,
): Promise<void> {
  const label = member.label.label_text;
  if (drive.loadedMedia() === label && verified.get(drive) === label) return;
  verified.delete(drive);
  log(`loading media '${label}'`);
  await drive.loadMedia(label);
  const labels = await readTapeLabels(drive);
  if (labels.mediaLabel.uuid !== member.label.uuid) {
    throw new TapeRestoreError(
      'WRONG_MEDIA_SET',
      `tape ${label} has uuid ${labels.mediaLabel.uuid}, the inventory says ${member.label.uuid}`,
      { tape: label, fileNumber: 0 },
    );
  }
  const set = labels.mediaSetLabel;
  if (set?.uuid !== mediaSet.uuid || set.seq_nr !== member.mediaSetLabel?.seq_nr) {
    throw new TapeRestoreError(
      'WRONG_MEDIA_SET',
      `tape ${label} belongs to media set ${set?.uuid ?? 'none'} (position ${set?.seq_nr ?? '-'}), not ${mediaSet.uuid} (position ${member.mediaSetLabel?.seq_nr})`,
      { tape: label, fileNumber: 1 },
    );
  }
  if (set.encryption_key_fingerprint) {
    throw new TapeRestoreError(
      'UNSUPPORTED',
      `media set ${mediaSet.uuid} is encrypted by the drive; a virtual drive cannot decrypt it`,
      { tape: label, fileNumber: 1 },
    );
  }
  verified.set(drive, label);
}

/** Members in ascending media-uuid order, as PBS's BTreeMap walks them (§9, §10). */
export function byMediaUuid<T extends { mediaUuid: string }>(items: Iterable<T>): T[] {
  return [...items].sort((a, b) =>
    a.mediaUuid < b.mediaUuid ? -1 : a.mediaUuid > b.mediaUuid ? 1 : 0,
  );
}
