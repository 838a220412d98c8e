import { join } from 'node:path';
import { INVENTORY_FILE, type InventoryEntry, loadInventory } from '../catalog/inventory.js';
import { loadMediaCatalog } from '../catalog/media-catalog.js';
import { TapeRestoreError } from '../errors.js';
import type { TapeDrive } from '../tape/tape-drive.js';

/** One tape of the inventory, for `media list`. */
export interface MediaListEntry {
  readonly label: string;
  readonly uuid: string;
  readonly pool: string | undefined;
  readonly mediaSetUuid: string | undefined;
  readonly seqNr: number | undefined;
  readonly status: string;
  readonly location: string;
  /** In the given drive (a virtual tape or a dump), when a drive was given. */
  readonly online: boolean | undefined;
  readonly bytesUsed: number | undefined;
}

/** Every tape of the inventory (§7), by media set and position. */
export async function listMedia(statusDir: string, drive?: TapeDrive): Promise<MediaListEntry[]> {
  const inventory = await loadInventory(statusDir);
  const online = drive ? new Set(await drive.listMedia()) : undefined;
  return inventory
    .map((entry) => ({
      label: entry.label.label_text,
      uuid: entry.label.uuid,
      pool: entry.mediaSetLabel?.pool ?? entry.label.pool ?? undefined,
      mediaSetUuid: entry.mediaSetLabel?.uuid,
      seqNr: entry.mediaSetLabel?.seq_nr,
      status: entry.status ?? 'unknown',
      location: entry.location ?? 'offline',
      online: online ? online.has(entry.label.label_text) : undefined,
      bytesUsed: entry.bytesUsed,
    }))
    .sort(
      (a, b) =>
        (a.mediaSetUuid ?? '').localeCompare(b.mediaSetUuid ?? '') ||
        (a.seqNr ?? 0) - (b.seqNr ?? 0) ||
        a.label.localeCompare(b.label),
    );
}

/** What the catalog says one file of a tape holds. */
export type CatalogListing =
  | {
      readonly fileNumber: number;
      readonly kind: 'chunk-archive';
      readonly store: string;
      readonly chunks: number;
      readonly uuid: string;
    }
  | {
      readonly fileNumber: number;
      readonly kind: 'snapshot-archive';
      readonly store: string;
      readonly snapshot: string;
      readonly uuid: string;
    };

export interface MediaCatalogListing {
  readonly label: string;
  readonly uuid: string;
  readonly mediaSetUuid: string | undefined;
  readonly seqNr: number | undefined;
  readonly files: CatalogListing[];
}

export function findInventoryEntry(
  inventory: readonly InventoryEntry[],
  label: string,
  statusDir: string,
): InventoryEntry {
  const entry = inventory.find((e) => e.label.label_text === label);
  if (!entry) {
    throw new TapeRestoreError('MEDIA_NOT_FOUND', `tape ${label} is not in the inventory`, {
      tape: label,
      path: join(statusDir, INVENTORY_FILE),
    });
  }
  return entry;
}

/** The catalog of tape `label` (§7), file by file. */
export async function listMediaCatalog(
  statusDir: string,
  label: string,
): Promise<MediaCatalogListing> {
  const entry = findInventoryEntry(await loadInventory(statusDir), label, statusDir);
  const catalog = await loadMediaCatalog(
    join(statusDir, `${entry.label.uuid}.log`),
    entry.label.uuid,
    label,
  );
  const files: CatalogListing[] = [
    ...catalog.chunkArchives.map((a) => ({
      fileNumber: a.fileNumber,
      kind: 'chunk-archive' as const,
      store: a.store,
      chunks: a.chunkCount,
      uuid: a.uuid,
    })),
    ...catalog.snapshots.map((s) => ({
      fileNumber: s.fileNumber,
      kind: 'snapshot-archive' as const,
      store: s.store,
      snapshot: s.snapshot,
      uuid: s.uuid,
    })),
  ].sort((a, b) => a.fileNumber - b.fileNumber);
  return {
    label,
    uuid: entry.label.uuid,
    mediaSetUuid: catalog.mediaSetUuid,
    seqNr: catalog.seqNr,
    files,
  };
}
