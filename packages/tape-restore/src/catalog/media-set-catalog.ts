import { join } from 'node:path';
import type { InventoryEntry, MediaSet } from './inventory.js';
import { loadMediaCatalog, type MediaCatalog } from './media-catalog.js';

export interface CatalogHit {
  readonly mediaUuid: string;
  readonly label: string;
  readonly fileNumber: number;
}

/**
 * The union of a media set's per-tape catalogs (§7): every member's `<uuid>.log` must
 * exist and load. Lookups return the tape and file number from the first catalog
 * that has the key (a media set stores each chunk once).
 */
export class MediaSetCatalog {
  readonly mediaSet: MediaSet;
  readonly catalogs: ReadonlyArray<{
    readonly entry: InventoryEntry;
    readonly catalog: MediaCatalog;
  }>;

  private constructor(mediaSet: MediaSet, catalogs: MediaSetCatalog['catalogs']) {
    this.mediaSet = mediaSet;
    this.catalogs = catalogs;
  }

  static async load(statusDir: string, mediaSet: MediaSet): Promise<MediaSetCatalog> {
    const catalogs = [];
    for (const entry of mediaSet.members) {
      const path = join(statusDir, `${entry.label.uuid}.log`);
      catalogs.push({
        entry,
        catalog: await loadMediaCatalog(path, entry.label.uuid, entry.label.label_text),
      });
    }
    return new MediaSetCatalog(mediaSet, catalogs);
  }

  lookupSnapshot(store: string, snapshot: string): CatalogHit | undefined {
    for (const { entry, catalog } of this.catalogs) {
      const fileNumber = catalog.snapshotFiles.get(store)?.get(snapshot);
      if (fileNumber !== undefined)
        return { mediaUuid: entry.label.uuid, label: entry.label.label_text, fileNumber };
    }
    return undefined;
  }

  lookupChunk(store: string, digest: string): CatalogHit | undefined {
    for (const { entry, catalog } of this.catalogs) {
      const fileNumber = catalog.chunks.get(store)?.get(digest);
      if (fileNumber !== undefined)
        return { mediaUuid: entry.label.uuid, label: entry.label.label_text, fileNumber };
    }
    return undefined;
  }
}
