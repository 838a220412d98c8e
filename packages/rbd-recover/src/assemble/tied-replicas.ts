import { posix } from 'node:path';
import { forEachConcurrent } from '@x/blockio';
import { getOrInsert } from '../map-utils.js';
import type { Catalog } from '../metadata/catalog.js';
import type { ObjectCopy } from '../replica.js';
import { type CommandOptions, hashFiles } from '../transport/osd-commands.js';
import type { TransportPool } from '../transport/transport-pool.js';
import type { TransferOutcome } from './transfer.js';

/** Replicas of one object, at the same PG epoch, whose bytes differ. */
export interface ReplicaConflict {
  readonly pg: string;
  /** The object file, relative to `current/` (as the inventory spells it). */
  readonly path: string;
  readonly epoch: number;
  /** The copy used (its bytes are in the output) first, then each one that differs from it. */
  readonly copies: ReadonlyArray<{ osd: string; size: number; sha1: string | undefined }>;
}

/**
 * Compares every copied object with its other replicas of the same epoch (a PG whose
 * newest epoch is on several OSDs: the first was used). Sizes come from the inventory;
 * equal sizes are compared by SHA-1, computed on each replica's host (`sha1sum`, so only
 * digests cross the network) against the SHA-1 of the bytes copied. Replicas that
 * cannot be read for this are reported in `problems`, not as conflicts.
 */
export async function compareSameEpochReplicas(
  catalog: Catalog,
  outcomes: readonly TransferOutcome[],
  transports: TransportPool,
  options: CommandOptions & { problems: string[] },
): Promise<ReplicaConflict[]> {
  const describe = (osd: number) => {
    const location = catalog.inventory.osds[osd]?.osd;
    return location ? `${location.host}:${location.dataPath}` : String(osd);
  };
  const conflicts = new Map<TransferOutcome, ReplicaConflict>();
  const differs = (outcome: TransferOutcome, other: ObjectCopy, sha1: string | undefined) => {
    const used = outcome.copy as ObjectCopy;
    const conflict = getOrInsert(conflicts, outcome, () => ({
      pg: used.object.pg,
      path: used.object.path,
      epoch: used.epoch as number,
      copies: [{ osd: describe(used.osd), size: outcome.bytes, sha1: outcome.checksum }],
    }));
    (conflict.copies as Array<ReplicaConflict['copies'][number]>).push({
      osd: describe(other.osd),
      size: other.object.size,
      sha1,
    });
  };
  const toHash = new Map<number, Array<{ outcome: TransferOutcome; copy: ObjectCopy }>>();
  for (const outcome of outcomes) {
    const used = outcome.copy;
    // Such an outcome carries a SHA-1 (checksumFor in transfer.ts).
    if (used === undefined || used.epoch === undefined || outcome.checksumKind !== 'sha1') continue;
    for (const other of outcome.job.copies) {
      if (other === used || other.epoch !== used.epoch) continue;
      if (other.object.size !== outcome.bytes) differs(outcome, other, undefined);
      else getOrInsert(toHash, other.osd, () => []).push({ outcome, copy: other });
    }
  }
  await forEachConcurrent(
    [...toHash],
    4,
    async ([osd, list]) => {
      const location = catalog.inventory.osds[osd]?.osd;
      if (location === undefined) return;
      const current = posix.join(location.dataPath, 'current');
      try {
        const transport = await transports.get(location);
        const digests = await hashFiles(
          transport,
          current,
          list.map(({ copy }) => copy.object.path),
          options,
        );
        for (const { outcome, copy } of list) {
          const sha1 = digests.get(copy.object.path);
          if (sha1 === undefined) {
            options.problems.push(
              `${describe(osd)}/current/${copy.object.path}: could not be read to compare it with the replica used (same epoch)`,
            );
          } else if (sha1 !== outcome.checksum) {
            differs(outcome, copy, sha1);
          }
        }
      } catch (error) {
        if ((error as { code?: string }).code === 'ABORTED') throw error;
        options.problems.push(
          `${describe(osd)}: could not compare same-epoch replicas: ${(error as Error).message}`,
        );
      }
    },
    { signal: options.signal },
  );
  return [...conflicts.values()];
}
