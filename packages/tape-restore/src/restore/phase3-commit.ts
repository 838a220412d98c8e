import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromSystemError } from '@x/blockio';
import { TapeRestoreError } from '../errors.js';
import type { TaskLog } from './context.js';
import type { SelectedSnapshot, SkippedSnapshot } from './select.js';

export interface CommitResult {
  readonly restored: string[];
  readonly skipped: SkippedSnapshot[];
  /** Failures moving a snapshot into place: the task fails after the others are done. */
  readonly errors: Array<{ snapshot: string; error: unknown }>;
}

/**
 * Phase 3 (§9): each snapshot moves from the temporary directory into its group —
 * created (with its owner file) if new, owned by the restore owner, the snapshot
 * directory new — under the group's lock. The move is one rename within the datastore,
 * so the target never shows a partial snapshot directory.
 */
export async function commitSnapshots(
  mediaSetUuid: string,
  snapshots: readonly SelectedSnapshot[],
  owner: string,
  log: TaskLog,
): Promise<CommitResult> {
  const result: CommitResult = { restored: [], skipped: [], errors: [] };
  log('Phase 3: copy snapshots from temp dir to datastores');
  for (const item of snapshots) {
    const key = `${item.sourceStore}:${item.path}`;
    const from = join(item.target.tempDir(mediaSetUuid), item.sourceStore, item.path);
    try {
      const groupOwner = await item.target.createGroup(item.snapshot, owner);
      if (groupOwner !== owner) {
        const reason = `restore owner '${owner}' does not own the group (owner is '${groupOwner}')`;
        log(`WARN: ${reason}, skipping ${key}`);
        result.skipped.push({ snapshot: key, reason });
        continue;
      }
      const release = await item.target.lockGroup(item.snapshot);
      try {
        if (await item.target.snapshotExists(item.snapshot)) {
          const reason = `snapshot ${item.path} already exists on datastore '${item.target.name}'`;
          log(`WARN: ${reason}`);
          result.skipped.push({ snapshot: key, reason });
          continue;
        }
        const to = item.target.snapshotDir(item.snapshot);
        try {
          await rename(from, to);
        } catch (error) {
          throw fromSystemError(error, `move ${item.path} into place`, { path: to });
        }
        log(`restored snapshot ${key} to datastore '${item.target.name}'`);
        result.restored.push(key);
      } finally {
        await release();
      }
    } catch (error) {
      const message =
        error instanceof TapeRestoreError || error instanceof Error ? error.message : String(error);
      log(`WARN: could not restore ${key}: ${message}`);
      result.errors.push({ snapshot: key, error });
    } finally {
      await rm(from, { recursive: true, force: true }).catch(() => {});
    }
  }
  return result;
}
