import { assembleMediaSet, loadInventory } from '../catalog/inventory.js';
import type { CatalogChunkArchive } from '../catalog/media-catalog.js';
import { MediaSetCatalog } from '../catalog/media-set-catalog.js';
import type { Datastore } from '../datastore/datastore.js';
import type { TapeDrive, TapeFileSizes } from '../tape/tape-drive.js';
import { openDatastores } from './restore-snapshots.js';
import { type SelectedSnapshot, type SkippedSnapshot, selectSnapshots } from './select.js';
import { parseStoreMapping, type StoreMapping } from './store-mapping.js';

export interface PlanOptions {
  statusDir: string;
  mediaSetUuid: string;
  storeMapping: string | StoreMapping;
  datastores: Readonly<Record<string, string>>;
  snapshots: readonly string[];
  owner?: string | undefined;
  /** Given, the plan adds which tapes are online and the byte sizes of the files. */
  drive?: TapeDrive | undefined;
}

/** One tape file the restore will (or may) read. */
export interface PlannedRead {
  readonly fileNumber: number;
  readonly kind: 'snapshot-archive' | 'chunk-archive';
  readonly store: string;
  /** For snapshot archives. */
  readonly snapshot?: string | undefined;
  /** Chunks it must give (chunk archives written with a selected snapshot, lacking in the target). */
  readonly chunks: number;
  /**
   * Chunks it holds that the target lacks and a selected snapshot may share with an
   * earlier one: known only once phase 1 has read the indexes.
   */
  readonly possibleChunks: number;
  /** `certain`: will be read; `possible`: read only if an index references its chunks. */
  readonly need: 'certain' | 'possible';
  /** Size of the tape file, when the drive can tell without loading the tape. */
  readonly bytes: number | undefined;
}

export interface PlannedTape {
  readonly label: string;
  readonly uuid: string;
  readonly seqNr: number;
  readonly location: string;
  readonly online: boolean | undefined;
  readonly reads: PlannedRead[];
}

export interface RestorePlan {
  readonly mediaSetUuid: string;
  readonly pool: string;
  readonly restore: Array<{ snapshot: string; target: string; tape: string; fileNumber: number }>;
  readonly alreadyPresent: string[];
  readonly skipped: SkippedSnapshot[];
  /** Tapes in the order the restore loads them (phase 1, then phase 2; ascending uuid in each). */
  readonly loadOrder: string[];
  readonly tapes: PlannedTape[];
  readonly totals: {
    readonly tapes: number;
    readonly certainTapes: number;
    readonly files: number;
    readonly chunks: number;
    readonly possibleChunks: number;
    /** Sum of the sizes of the files listed (certain ones only), when known. */
    readonly bytes: number | undefined;
    readonly possibleBytes: number | undefined;
  };
}

interface Positioned {
  readonly seqNr: number;
  readonly fileNumber: number;
  readonly mediaUuid: string;
  readonly archive?: CatalogChunkArchive;
  readonly snapshot?: { store: string; snapshot: string };
}

/**
 * What a list restore will read, from the catalogs alone: no tape is loaded, nothing
 * is written (target chunks are looked up, not touched). Snapshot archives are exact.
 * For chunks: PBS writes the chunks a snapshot brings to the media set in chunk
 * archives right before its snapshot archive, so those archives' chunks that the
 * target lacks are certain reads. A chunk shared with a snapshot written earlier
 * lives in an earlier archive; which ones a snapshot needs is in its index, on tape,
 * so earlier archives of the same store with chunks the target may lack are listed
 * as possible reads (an upper bound).
 */
export async function planRestore(options: PlanOptions): Promise<RestorePlan> {
  const mapping =
    typeof options.storeMapping === 'string'
      ? parseStoreMapping(options.storeMapping)
      : options.storeMapping;
  const inventory = await loadInventory(options.statusDir);
  const mediaSet = assembleMediaSet(inventory, options.mediaSetUuid);
  const catalog = await MediaSetCatalog.load(options.statusDir, mediaSet);
  const datastores = await openDatastores(options.datastores);
  const selection = await selectSnapshots(
    options.snapshots,
    mapping,
    datastores,
    catalog,
    options.owner ?? 'root@pam',
    () => {},
  );

  // Every catalogued file of the media set in write order (seq_nr, then file number).
  const sequence: Positioned[] = [];
  for (const { entry, catalog: media } of catalog.catalogs) {
    const seqNr = entry.mediaSetLabel?.seq_nr ?? 0;
    const items: Positioned[] = [
      ...media.chunkArchives.map((archive) => ({
        seqNr,
        fileNumber: archive.fileNumber,
        mediaUuid: entry.label.uuid,
        archive,
      })),
      ...media.snapshots.map((s) => ({
        seqNr,
        fileNumber: s.fileNumber,
        mediaUuid: entry.label.uuid,
        snapshot: { store: s.store, snapshot: s.snapshot },
      })),
    ];
    sequence.push(...items.sort((a, b) => a.fileNumber - b.fileNumber));
  }
  const index = new Map<string, number>();
  sequence.forEach((item, i) => {
    if (item.snapshot) index.set(`${item.mediaUuid}:${item.fileNumber}`, i);
  });

  const reads = new Map<string, Map<number, { read: Omit<PlannedRead, 'bytes'> }>>();
  const addRead = (mediaUuid: string, read: Omit<PlannedRead, 'bytes'>) => {
    let perTape = reads.get(mediaUuid);
    if (!perTape) {
      perTape = new Map();
      reads.set(mediaUuid, perTape);
    }
    const existing = perTape.get(read.fileNumber)?.read;
    if (!existing) {
      perTape.set(read.fileNumber, { read });
      return;
    }
    perTape.set(read.fileNumber, {
      read: {
        ...existing,
        chunks: Math.max(existing.chunks, read.chunks),
        possibleChunks: Math.max(existing.possibleChunks, read.possibleChunks),
        need: existing.need === 'certain' || read.need === 'certain' ? 'certain' : 'possible',
      },
    });
  };

  const counted = new Map<Datastore, Set<string>>();
  const lacking = async (target: Datastore, archive: CatalogChunkArchive) => {
    let seen = counted.get(target);
    if (!seen) {
      seen = new Set();
      counted.set(target, seen);
    }
    let count = 0;
    for (const digest of archive.digests) {
      if (seen.has(digest)) continue;
      seen.add(digest);
      if (!(await target.hasChunk(digest))) count++;
    }
    return count;
  };

  const possibleStores = new Set<string>();
  for (const item of selection.selected) {
    addRead(item.mediaUuid, {
      fileNumber: item.fileNumber,
      kind: 'snapshot-archive',
      store: item.sourceStore,
      snapshot: item.path,
      chunks: 0,
      possibleChunks: 0,
      need: 'certain',
    });
    const at = index.get(`${item.mediaUuid}:${item.fileNumber}`) ?? 0;
    let i = at - 1;
    for (; i >= 0 && !sequence[i]?.snapshot; i--) {
      const own = sequence[i] as Positioned;
      if (own.archive?.store !== item.sourceStore) continue;
      const chunks = await lacking(item.target, own.archive);
      if (chunks > 0)
        addRead(own.mediaUuid, {
          fileNumber: own.fileNumber,
          kind: 'chunk-archive',
          store: own.archive.store,
          chunks,
          possibleChunks: 0,
          need: 'certain',
        });
    }
    possibleStores.add(item.sourceStore);
  }
  // Earlier archives of the same stores: possible reads (no target look-ups: an upper bound).
  const lastSelected = Math.max(
    -1,
    ...selection.selected.map((s) => index.get(`${s.mediaUuid}:${s.fileNumber}`) ?? -1),
  );
  for (let i = 0; i < lastSelected; i++) {
    const item = sequence[i] as Positioned;
    if (!item.archive || !possibleStores.has(item.archive.store)) continue;
    if (reads.get(item.mediaUuid)?.get(item.fileNumber)?.read.need === 'certain') continue;
    addRead(item.mediaUuid, {
      fileNumber: item.fileNumber,
      kind: 'chunk-archive',
      store: item.archive.store,
      chunks: 0,
      possibleChunks: item.archive.chunkCount,
      need: 'possible',
    });
  }

  const sizeSource = options.drive as (TapeDrive & Partial<TapeFileSizes>) | undefined;
  const online = options.drive ? new Set(await options.drive.listMedia()) : undefined;
  const tapes: PlannedTape[] = [];
  for (const member of mediaSet.members) {
    const perTape = reads.get(member.label.uuid);
    if (!perTape) continue;
    const sizes = online?.has(member.label.label_text)
      ? await sizeSource?.tapeFileSizes?.(member.label.label_text)
      : undefined;
    tapes.push({
      label: member.label.label_text,
      uuid: member.label.uuid,
      seqNr: member.mediaSetLabel?.seq_nr ?? 0,
      location: member.location ?? 'offline',
      online: online ? online.has(member.label.label_text) : undefined,
      reads: [...perTape.values()]
        .map(({ read }) => ({ ...read, bytes: sizes?.[read.fileNumber] }))
        .sort((a, b) => a.fileNumber - b.fileNumber),
    });
  }
  const certainOf = (t: PlannedTape) => t.reads.filter((r) => r.need === 'certain');
  const sum = (list: PlannedRead[]) =>
    list.every((r) => r.bytes !== undefined)
      ? list.reduce((a, r) => a + (r.bytes ?? 0), 0)
      : undefined;
  const allReads = tapes.flatMap((t) => t.reads);
  const certain = allReads.filter((r) => r.need === 'certain');
  const possible = allReads.filter((r) => r.need === 'possible');
  const byUuid = (list: string[]) => [...new Set(list)].sort();
  const phase1 = byUuid(selection.selected.map((s) => s.mediaUuid));
  const phase2 = byUuid(
    tapes.filter((t) => t.reads.some((r) => r.kind === 'chunk-archive')).map((t) => t.uuid),
  );
  const labelOf = (uuid: string) =>
    mediaSet.members.find((m) => m.label.uuid === uuid)?.label.label_text ?? uuid;
  const loadOrder: string[] = [];
  for (const uuid of [...phase1, ...phase2]) {
    const label = labelOf(uuid);
    if (loadOrder[loadOrder.length - 1] !== label) loadOrder.push(label);
  }
  return {
    mediaSetUuid: mediaSet.uuid,
    pool: mediaSet.pool,
    restore: selection.selected.map((s: SelectedSnapshot) => ({
      snapshot: `${s.sourceStore}:${s.path}`,
      target: s.target.name,
      tape: s.label,
      fileNumber: s.fileNumber,
    })),
    alreadyPresent: selection.alreadyPresent,
    skipped: selection.skipped,
    loadOrder,
    tapes,
    totals: {
      tapes: tapes.length,
      certainTapes: tapes.filter((t) => certainOf(t).length > 0).length,
      files: certain.length,
      chunks: certain.reduce((a, r) => a + r.chunks, 0),
      possibleChunks: possible.reduce((a, r) => a + r.possibleChunks, 0),
      bytes: sum(certain),
      possibleBytes: sum(possible),
    },
  };
}
