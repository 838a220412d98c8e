import { type BlockDevice, throwIfAborted } from '@x/blockio';
import { entryOffset } from '../format/table-entries.js';
import { lookupSnapshot } from '../snapshot/find-snapshot.js';
import type { HeaderFacts } from './header-facts.js';
import { OWNER_ACTIVE } from './metadata-map.js';
import type { SnapshotInfo } from './snapshot-table.js';
import { readClipped, type WalkOwner } from './walk-tables.js';

/** One readable L2 table, handed to the visitor in a buffer that is reused for the next one. */
export interface L2TableVisit {
  owner: WalkOwner;
  l1Index: number;
  /** The L1 entry's halves. */
  l1Hi: number;
  l1Lo: number;
  /** Byte offset of the L1 entry in the file. */
  l1EntryOffset: number;
  l2Offset: number;
  table: Buffer;
}

const L1_CHUNK_ENTRIES = 8192;

/**
 * Calls `visitL1` for every non-zero L1 entry and `visitL2` for every L2 table
 * that lies inside the file (damaged entries are check's business, not this
 * iterator's). One L2 buffer is reused throughout.
 */
export async function forEachTable(
  file: BlockDevice,
  facts: HeaderFacts,
  owner: WalkOwner,
  visitors: {
    l1?: (index: number, hi: number, lo: number, entryOffset: number) => void | Promise<void>;
    l2?: (visit: L2TableVisit) => void | Promise<void>;
  },
  signal?: AbortSignal,
): Promise<void> {
  if (owner.l1Entries === 0) return;
  const table = Buffer.alloc(facts.clusterSize);
  const chunk = Buffer.alloc(Math.min(owner.l1Entries, L1_CHUNK_ENTRIES) * 8);
  for (let base = 0; base < owner.l1Entries; base += L1_CHUNK_ENTRIES) {
    const count = Math.min(L1_CHUNK_ENTRIES, owner.l1Entries - base);
    const bytes = chunk.subarray(0, count * 8);
    await readClipped(file, owner.l1Offset + base * 8, bytes);
    for (let i = 0; i < count; i++) {
      const hi = bytes.readUInt32BE(i * 8);
      const lo = bytes.readUInt32BE(i * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      const l1EntryOffset = owner.l1Offset + (base + i) * 8;
      await visitors.l1?.(base + i, hi, lo, l1EntryOffset);
      const l2Offset = entryOffset(hi, lo);
      if (l2Offset === 0 || l2Offset >= facts.fileSize || visitors.l2 === undefined) continue;
      throwIfAborted(signal);
      await readClipped(file, l2Offset, table);
      await visitors.l2({
        owner,
        l1Index: base + i,
        l1Hi: hi,
        l1Lo: lo,
        l1EntryOffset,
        l2Offset,
        table,
      });
    }
  }
}

/** Which tables a check reports on: `--snapshot active|inactive|all|ID|NAME`. */
export type SnapshotScope = 'active' | 'inactive' | 'all' | (string & {});

/** The owners (active first, then snapshots in table order) with their report flags. */
export function walkOwners(
  facts: HeaderFacts,
  snapshots: SnapshotInfo[],
  scope: SnapshotScope = 'all',
): WalkOwner[] {
  const named =
    scope === 'active' || scope === 'inactive' || scope === 'all'
      ? undefined
      : lookupSnapshot(snapshots, scope);
  const owners: WalkOwner[] = [
    {
      owner: OWNER_ACTIVE,
      id: 'active',
      label: 'active',
      active: true,
      l1Offset: facts.l1.offset,
      l1Entries: facts.l1.readable ? facts.l1.entries : 0,
      report: scope === 'active' || scope === 'all',
    },
  ];
  for (const snapshot of snapshots) {
    owners.push({
      owner: snapshot.index,
      id: snapshot.id,
      label: snapshot.label,
      active: false,
      l1Offset: snapshot.l1Offset,
      l1Entries: snapshot.l1Entries,
      report: scope === 'inactive' || scope === 'all' || snapshot === named,
    });
  }
  return owners;
}
