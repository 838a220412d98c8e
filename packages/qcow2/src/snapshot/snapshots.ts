import { FileDevice } from '@x/blockio';
import type { BackingPolicy } from '../backing/policy.js';
import { analyseImage } from '../check/analyse.js';
import { Qcow2Error } from '../errors.js';
import { readQcow2Metadata } from '../format/image-metadata.js';
import { openQcow2 } from '../image/open.js';
import type { CreateSnapshotOptions } from '../image/write-path.js';
import { Qcow2Writer } from '../write/writer.js';
import { findSnapshot } from './find-snapshot.js';
import { type RescueOptions, rescueApply, type SnapshotRescue } from './rescue-apply.js';
import { damageBlockingApply } from './snapshot-damage.js';
import { type SnapshotEntry, snapshotEntry } from './snapshot-entry.js';
import { applySnapshotIn, createSnapshotIn, deleteSnapshotIn } from './snapshot-operations.js';
import { snapshotRecords } from './snapshot-table-writer.js';

export interface SnapshotCommandOptions {
  /** Snapshot operations never read the backing file; default `ignore`. */
  backingPolicy?: BackingPolicy | undefined;
}

/** The internal snapshots of an image (read-only). */
export async function listSnapshots(path: string): Promise<SnapshotEntry[]> {
  const file = await FileDevice.open(path);
  try {
    const metadata = await readQcow2Metadata(file);
    return snapshotRecords(metadata.snapshots, metadata.virtualSize).map(snapshotEntry);
  } finally {
    await file.close();
  }
}

async function withWriter<T>(
  path: string,
  options: SnapshotCommandOptions,
  operation: (writer: Qcow2Writer) => Promise<T>,
): Promise<T> {
  const image = await openQcow2(path, {
    writable: true,
    backingPolicy: options.backingPolicy ?? 'ignore',
  });
  try {
    const writer = image.writePath;
    if (!(writer instanceof Qcow2Writer)) {
      throw new Qcow2Error('UNSUPPORTED', 'the image has no qcow2 writer', { path });
    }
    return await writer.exclusive(async () => {
      await writer.prepareForWrite();
      return operation(writer);
    });
  } finally {
    await image.close();
  }
}

/** Takes an internal snapshot of the active state, as `qemu-img snapshot -c NAME`. */
export function createSnapshot(
  path: string,
  name: string,
  options: CreateSnapshotOptions & SnapshotCommandOptions = {},
): Promise<SnapshotEntry> {
  return withWriter(path, options, async (writer) =>
    snapshotEntry(await createSnapshotIn(writer, name, options)),
  );
}

/** The snapshot reverted to, and what a rescue did if one was needed. */
export interface AppliedSnapshot extends SnapshotEntry {
  /** Set when the active state was damaged and the snapshot was applied without trusting it. */
  rescue: SnapshotRescue | undefined;
}

/**
 * Reverts the active state to a snapshot (id first, then name). On a healthy
 * image this is `qemu-img snapshot -a`, byte for byte. The image is checked
 * first (read-only); when the active tables, the refcounts or the header
 * flags are damaged, qemu-img's way would fail half way or free clusters the
 * snapshot still uses, so a rescue is done instead (see `rescueApply`): the
 * snapshot's tables are verified, made active, and the refcounts rebuilt,
 * with an undo log. The image is left untouched, with SNAPSHOT_DAMAGED, when
 * the snapshot's own tables are damaged too.
 */
export async function applySnapshot(
  path: string,
  idOrName: string,
  options: SnapshotCommandOptions & RescueOptions = {},
): Promise<AppliedSnapshot> {
  const file = await FileDevice.open(path);
  let analysis: Awaited<ReturnType<typeof analyseImage>>;
  try {
    analysis = await analyseImage(file, { signal: options.signal });
  } finally {
    await file.close();
  }
  const { snapshots, damaged } = analysis.snapshotTable;
  const target = findSnapshot(snapshots, idOrName, path, { tableDamaged: damaged });
  const damage = damageBlockingApply(analysis);
  if (damage.length === 0) {
    const applied = await withWriter(path, options, async (writer) =>
      snapshotEntry(await applySnapshotIn(writer, idOrName)),
    );
    return { ...applied, rescue: undefined };
  }
  const rescue = await rescueApply(path, target, damage, analysis.findings.exitCode(), options);
  const entry = (await listSnapshots(path)).find((snapshot) => snapshot.id === target.id);
  if (entry === undefined) {
    throw new Qcow2Error('CORRUPT', `snapshot ${target.id} is gone after the rescue`, { path });
  }
  return { ...entry, rescue };
}

/** Deletes a snapshot (id first, then name), as `qemu-img snapshot -d`. */
export function deleteSnapshot(
  path: string,
  idOrName: string,
  options: SnapshotCommandOptions = {},
): Promise<SnapshotEntry> {
  return withWriter(path, options, async (writer) =>
    snapshotEntry(await deleteSnapshotIn(writer, idOrName)),
  );
}

/** Deletes every snapshot except one (id first, then name); returns the deleted ones. */
export function deleteSnapshotsExcept(
  path: string,
  keepIdOrName: string,
  options: SnapshotCommandOptions = {},
): Promise<SnapshotEntry[]> {
  return withWriter(path, options, async (writer) => {
    const keep = findSnapshot(writer.snapshotRecords(), keepIdOrName, path);
    const deleted: SnapshotEntry[] = [];
    for (const record of [...writer.snapshotRecords()]) {
      if (record === keep) continue;
      deleted.push(snapshotEntry(await deleteSnapshotIn(writer, record.id)));
    }
    return deleted;
  });
}
