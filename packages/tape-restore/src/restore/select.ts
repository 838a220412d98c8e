import type { MediaSetCatalog } from '../catalog/media-set-catalog.js';
import type { Datastore } from '../datastore/datastore.js';
import { formatSnapshotPath, parseStoreSnapshot, type SnapshotName } from '../snapshot-name.js';
import type { TaskLog } from './context.js';
import { type StoreMapping, targetStore } from './store-mapping.js';

export interface SelectedSnapshot {
  /** `store:[ns/…/]type/id/time` as requested. */
  readonly request: string;
  readonly sourceStore: string;
  readonly target: Datastore;
  readonly snapshot: SnapshotName;
  /** Printed form (the catalog key). */
  readonly path: string;
  readonly mediaUuid: string;
  readonly label: string;
  readonly fileNumber: number;
}

export interface SkippedSnapshot {
  readonly snapshot: string;
  readonly reason: string;
}

export interface Selection {
  readonly selected: SelectedSnapshot[];
  /** Could not be restored (no target, other owner, not in the media set). */
  readonly skipped: SkippedSnapshot[];
  /** Already in the target: left untouched. */
  readonly alreadyPresent: string[];
}

/**
 * Phase 0 of the list restore (§9 "List restore"): for each requested snapshot, its
 * target datastore must be given, its group (if it exists) must belong to the restore
 * owner, it must not exist on the target yet, and the catalog must know it. Reads
 * only; nothing is created.
 */
export async function selectSnapshots(
  requests: readonly string[],
  mapping: StoreMapping,
  datastores: ReadonlyMap<string, Datastore>,
  catalog: MediaSetCatalog,
  owner: string,
  log: TaskLog,
): Promise<Selection> {
  const parsed = requests.map((request) => ({ request, ...parseStoreSnapshot(request) }));
  const selected: SelectedSnapshot[] = [];
  const skipped: SkippedSnapshot[] = [];
  const alreadyPresent: string[] = [];
  const seen = new Set<string>();
  for (const { request, store, snapshot } of parsed) {
    const path = formatSnapshotPath(snapshot);
    const key = `${store}:${path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const targetName = targetStore(mapping, store);
    const target = targetName === undefined ? undefined : datastores.get(targetName);
    if (target === undefined) {
      const reason =
        targetName === undefined
          ? `no target datastore is mapped for '${store}'`
          : `target datastore '${targetName}' is not given`;
      log(`WARN: ${reason}, skipping ${key}`);
      skipped.push({ snapshot: key, reason });
      continue;
    }
    const groupOwner = await target.groupOwner(snapshot);
    if (groupOwner !== undefined && groupOwner !== owner) {
      const reason = `restore owner '${owner}' does not own the group (owner is '${groupOwner}')`;
      log(`WARN: ${reason}, skipping ${key}`);
      skipped.push({ snapshot: key, reason });
      continue;
    }
    if (await target.snapshotExists(snapshot)) {
      log(`found snapshot ${path} on target datastore '${target.name}', skipping...`);
      alreadyPresent.push(key);
      continue;
    }
    const hit = catalog.lookupSnapshot(store, path);
    if (hit === undefined) {
      const reason = `did not find snapshot ${key} in media set ${catalog.mediaSet.uuid}`;
      log(`WARN: ${reason}`);
      skipped.push({ snapshot: key, reason });
      continue;
    }
    selected.push({ request, sourceStore: store, target, snapshot, path, ...hit });
  }
  return { selected, skipped, alreadyPresent };
}
