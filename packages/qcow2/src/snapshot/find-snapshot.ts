import { Qcow2Error } from '../errors.js';

/** What the lookup needs: the decoded table entry, the writer's record and check's view all have it. */
export interface SnapshotIdentity {
  readonly id: string;
  readonly name: string;
}

export interface FindSnapshotOptions {
  /** The table could not be read whole: say so when the snapshot is not found. */
  tableDamaged?: boolean | undefined;
}

/**
 * QEMU's rule (find_snapshot_by_id_or_name): an exact id match wins, then the
 * first name match; undefined when neither. The one place the rule lives.
 */
export function lookupSnapshot<T extends SnapshotIdentity>(
  snapshots: readonly T[],
  idOrName: string,
): T | undefined {
  return (
    snapshots.find((snapshot) => snapshot.id === idOrName) ??
    snapshots.find((snapshot) => snapshot.name === idOrName)
  );
}

/** `lookupSnapshot`, or NO_SUCH_SNAPSHOT naming the snapshots the image has. */
export function findSnapshot<T extends SnapshotIdentity>(
  snapshots: readonly T[],
  idOrName: string,
  path: string,
  options: FindSnapshotOptions = {},
): T {
  const found = lookupSnapshot(snapshots, idOrName);
  if (found === undefined) {
    const has =
      snapshots.length === 0 ? 'none' : snapshots.map((s) => `${s.id} "${s.name}"`).join(', ');
    const damaged = options.tableDamaged ? '; its snapshot table is damaged' : '';
    throw new Qcow2Error(
      'NO_SUCH_SNAPSHOT',
      `no snapshot with id or name "${idOrName}" (the image has ${has}${damaged})`,
      { path, structure: 'snapshot table' },
    );
  }
  return found;
}
