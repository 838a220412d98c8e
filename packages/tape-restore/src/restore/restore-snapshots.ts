import { rm } from 'node:fs/promises';
import { assembleMediaSet, loadInventory } from '../catalog/inventory.js';
import { MediaSetCatalog } from '../catalog/media-set-catalog.js';
import { Datastore } from '../datastore/datastore.js';
import { TapeRestoreError } from '../errors.js';
import type { TapeReadStats } from '../tape/stats.js';
import type { RestoreBaseOptions } from './context.js';
import { restoreSnapshotArchives } from './phase1-snapshots.js';
import { planChunkReads, restoreChunks } from './phase2-chunks.js';
import { commitSnapshots } from './phase3-commit.js';
import { type SkippedSnapshot, selectSnapshots } from './select.js';
import { parseStoreMapping, type StoreMapping } from './store-mapping.js';

export interface RestoreSnapshotsOptions extends RestoreBaseOptions {
  /** PBS mapping: `target`, `source=target`, comma-separated (or parsed). */
  storeMapping: string | StoreMapping;
  /** Where each target datastore lives: name -> directory. */
  datastores: Readonly<Record<string, string>>;
  /** `store:[ns/…/]type/id/time` entries. */
  snapshots: readonly string[];
  /** The restore owner (Auth ID). Default `root@pam`. */
  owner?: string | undefined;
  /** Chunk writers in flight (PBS: 4). */
  writers?: number | undefined;
}

export interface RestoreSnapshotsResult {
  readonly mediaSetUuid: string;
  /** Restored, `store:snapshot`. */
  readonly restored: string[];
  /** Already in the target, left untouched. */
  readonly alreadyPresent: string[];
  /** Could not be restored, with why. */
  readonly skipped: SkippedSnapshot[];
  readonly chunksRestored: number;
  readonly chunksAlreadyPresent: number;
  readonly chunksNotInCatalog: number;
  readonly chunksNotFound: number;
  readonly bytesRestored: number;
  readonly tape: TapeReadStats;
  /** Labels of the tapes loaded, in order. */
  readonly tapesLoaded: string[];
}

export const DEFAULT_OWNER = 'root@pam';

/** Opens the target datastores given by name -> path. */
export async function openDatastores(
  paths: Readonly<Record<string, string>>,
): Promise<Map<string, Datastore>> {
  const stores = new Map<string, Datastore>();
  for (const [name, path] of Object.entries(paths))
    stores.set(name, await Datastore.open(name, path));
  return stores;
}

/**
 * Restores selected snapshots from a media set (PBS's "restore single snapshots",
 * pbs-tape.md §9): select, phase 1 (snapshot archives to `.tmp/<media-set>`),
 * phase 2 (only the chunks the target lacks, each chunk archive left as soon as it
 * gave what it must), phase 3 (snapshots moved into place). The temporary directory
 * is removed on every exit path. A media set with a member missing from the inventory
 * or without a catalog is refused before anything is written.
 */
export async function restoreSnapshots(
  options: RestoreSnapshotsOptions,
): Promise<RestoreSnapshotsResult> {
  const log = options.log ?? (() => {});
  const owner = options.owner ?? DEFAULT_OWNER;
  const mapping =
    typeof options.storeMapping === 'string'
      ? parseStoreMapping(options.storeMapping)
      : options.storeMapping;
  const inventory = await loadInventory(options.statusDir);
  const mediaSet = assembleMediaSet(inventory, options.mediaSetUuid);
  const catalog = await MediaSetCatalog.load(options.statusDir, mediaSet);
  const datastores = await openDatastores(options.datastores);
  const tapesLoaded: string[] = [];
  const trackLoads = (line: string) => {
    const loaded = /^loading media '(.+)'$/.exec(line)?.[1];
    if (loaded) tapesLoaded.push(loaded);
    log(line);
  };
  const selection = await selectSnapshots(
    options.snapshots,
    mapping,
    datastores,
    catalog,
    owner,
    log,
  );
  const base = {
    mediaSetUuid: mediaSet.uuid,
    alreadyPresent: selection.alreadyPresent,
    chunksRestored: 0,
    chunksAlreadyPresent: 0,
    chunksNotInCatalog: 0,
    chunksNotFound: 0,
    bytesRestored: 0,
    tape: options.drive.stats,
    tapesLoaded,
  };
  if (selection.selected.length === 0) {
    log('nothing to restore, skipping remaining phases...');
    logSkipped(log, selection.skipped);
    return { ...base, restored: [], skipped: selection.skipped };
  }
  const used = [...new Set(selection.selected.map((s) => s.target))];
  const releases: Array<() => Promise<void>> = [];
  try {
    for (const store of used) releases.push(await store.lockMediaSetTemp(mediaSet.uuid));
    const wanted = await restoreSnapshotArchives(
      options.drive,
      mediaSet,
      selection.selected,
      trackLoads,
      options.signal,
    );
    const targets = new Map<string, Datastore>();
    for (const item of selection.selected) targets.set(item.sourceStore, item.target);
    const plan = await planChunkReads(wanted, targets, catalog, true);
    const chunks = await restoreChunks(options.drive, mediaSet, plan, targets, trackLoads, options);
    const commit = await commitSnapshots(mediaSet.uuid, selection.selected, owner, log);
    const skipped = [...selection.skipped, ...commit.skipped];
    logSkipped(log, skipped);
    if (commit.errors.length > 0) {
      const first = commit.errors[0]?.error;
      throw new TapeRestoreError(
        'SNAPSHOT_EXISTS',
        `errors during copy occurred (${commit.errors.length} snapshots): ${(first as Error)?.message ?? first}`,
        { cause: first },
      );
    }
    return {
      ...base,
      restored: commit.restored,
      skipped,
      chunksRestored: chunks.chunksRestored,
      chunksAlreadyPresent: plan.alreadyPresent + chunks.chunksTouched,
      chunksNotInCatalog: plan.notInCatalog,
      chunksNotFound: chunks.chunksNotFound,
      bytesRestored: chunks.bytesRestored,
    };
  } finally {
    // Always, even after errors (§9 phase 3): the temporary directory goes.
    for (const store of used)
      await rm(store.tempDir(mediaSet.uuid), { recursive: true, force: true }).catch(() => {});
    for (const release of releases) await release();
  }
}

function logSkipped(log: (line: string) => void, skipped: readonly SkippedSnapshot[]): void {
  if (skipped.length === 0) return;
  log('(partially) skipped the following snapshots:');
  for (const entry of skipped) log(`  ${entry.snapshot}`);
}
