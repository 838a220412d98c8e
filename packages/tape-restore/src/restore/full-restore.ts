import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromSystemError, ProgressTracker, throwIfAborted, writeFileAtomic } from '@x/blockio';
import { MediaCatalogBuilder } from '../catalog/catalog-writer.js';
import { assembleMediaSet, loadInventory } from '../catalog/inventory.js';
import type { Datastore } from '../datastore/datastore.js';
import { chunkArchiveEntries } from '../decode/chunk-archive.js';
import { headerString, readTapeContent } from '../decode/content.js';
import { TapeRestoreError } from '../errors.js';
import { parseSnapshotPath } from '../snapshot-name.js';
import type { TapeReadStats } from '../tape/stats.js';
import type { TapeFileReader } from '../tape/tape-file-reader.js';
import { createChunkVerifier } from './chunk-verifier.js';
import { loadMember, type RestoreBaseOptions } from './context.js';
import { extractPxarSnapshot } from './phase1-snapshots.js';
import { DEFAULT_OWNER, openDatastores } from './restore-snapshots.js';
import { parseStoreMapping, type StoreMapping, targetStore } from './store-mapping.js';
import { WriterPool } from './writer-pool.js';

export interface RestoreMediaSetOptions extends RestoreBaseOptions {
  storeMapping: string | StoreMapping;
  datastores: Readonly<Record<string, string>>;
  owner?: string | undefined;
  writers?: number | undefined;
  /** Where the rebuilt `<media-uuid>.log` catalogs go. Default: the status directory. */
  catalogDir?: string | undefined;
}

export interface RestoreMediaSetResult {
  readonly mediaSetUuid: string;
  /** Labels, in seq_nr order. */
  readonly tapes: string[];
  readonly snapshotsRestored: string[];
  /** Already in the target, or of a store without a target: their data was skipped. */
  readonly snapshotsSkipped: string[];
  /** Snapshot archives cut at end of media (rewritten on a later tape). */
  readonly incompleteSnapshots: string[];
  readonly snapshotsFailed: Array<{ snapshot: string; reason: string }>;
  readonly chunksRestored: number;
  readonly chunksAlreadyPresent: number;
  readonly bytesRestored: number;
  /** The catalogs written. */
  readonly catalogs: string[];
  readonly tape: TapeReadStats;
}

/**
 * The full restore (§9 "Full restore"): every file of every tape of the media set, in
 * seq_nr order. Snapshot archives of mapped stores are restored when new (an archive
 * cut at end of media is skipped: it was written again later); every chunk of every
 * chunk archive of a mapped store is verified and inserted (once per run). The
 * catalogs are rebuilt from what was read, as `<uuid>.tmp` renamed to `<uuid>.log`.
 */
export async function restoreMediaSet(
  options: RestoreMediaSetOptions,
): Promise<RestoreMediaSetResult> {
  const log = options.log ?? (() => {});
  const owner = options.owner ?? DEFAULT_OWNER;
  const mapping =
    typeof options.storeMapping === 'string'
      ? parseStoreMapping(options.storeMapping)
      : options.storeMapping;
  const mediaSet = assembleMediaSet(await loadInventory(options.statusDir), options.mediaSetUuid);
  const datastores = await openDatastores(options.datastores);
  const targetOf = (store: string): Datastore | undefined => {
    const name = targetStore(mapping, store);
    return name === undefined ? undefined : datastores.get(name);
  };
  const drive = options.drive;
  const result = {
    mediaSetUuid: mediaSet.uuid,
    tapes: [] as string[],
    snapshotsRestored: [] as string[],
    snapshotsSkipped: [] as string[],
    incompleteSnapshots: [] as string[],
    snapshotsFailed: [] as Array<{ snapshot: string; reason: string }>,
    chunksRestored: 0,
    chunksAlreadyPresent: 0,
    bytesRestored: 0,
    catalogs: [] as string[],
    tape: drive.stats,
  };
  const seen = new Set<string>();
  const pool = new WriterPool(options.writers ?? 4);
  const verifier = createChunkVerifier();
  const used = new Set<Datastore>(datastores.values());
  const releases: Array<() => Promise<void>> = [];
  const progress = new ProgressTracker(
    'restore media set',
    mediaSet.members.length,
    options.onProgress,
    { unit: 'items' },
  );
  try {
    for (const store of used) releases.push(await store.lockMediaSetTemp(mediaSet.uuid));
    for (const member of mediaSet.members) {
      const label = member.label.label_text;
      await loadMember(drive, member, mediaSet, log);
      result.tapes.push(label);
      const catalog = new MediaCatalogBuilder(
        member.label.uuid,
        mediaSet.uuid,
        member.mediaSetLabel?.seq_nr ?? 0,
      );
      for (;;) {
        throwIfAborted(options.signal);
        const next = await drive.readNextFile();
        if (next.kind === 'end-of-data') break;
        if (next.kind === 'filemark') {
          log(`File ${next.fileNumber}: skip unexpected filemark`);
          continue;
        }
        try {
          await restoreFile(next.reader, next.fileNumber, catalog);
        } finally {
          await next.reader.close();
        }
      }
      await pool.drain();
      for (const store of used) await store.syncChunks();
      const directory = options.catalogDir ?? options.statusDir;
      const path = join(directory, `${member.label.uuid}.log`);
      await writeFileAtomic(join(directory, `${member.label.uuid}.tmp`), catalog.bytes(), {
        ifExists: 'replace',
      });
      try {
        await rename(join(directory, `${member.label.uuid}.tmp`), path);
      } catch (error) {
        throw fromSystemError(error, 'put the rebuilt catalog in place', { path });
      }
      result.catalogs.push(path);
      progress.advance(1);
    }
    progress.finish();
    return result;
  } finally {
    await pool.drain().catch(() => {});
    await verifier.close();
    for (const store of used)
      await rm(store.tempDir(mediaSet.uuid), { recursive: true, force: true }).catch(() => {});
    for (const release of releases) await release();
  }

  async function restoreFile(
    reader: TapeFileReader,
    fileNumber: number,
    catalog: MediaCatalogBuilder,
  ): Promise<void> {
    const content = await readTapeContent(reader);
    const where = reader.where('MediaContentHeader');
    switch (content.kind) {
      case 'media-label':
      case 'media-set-label':
        throw new TapeRestoreError(
          'UNEXPECTED_FILE',
          `a ${content.kind} in the data area of the tape`,
          where,
        );
      case 'chunk-archive-v1.0':
      case 'snapshot-archive-v1.0':
        throw new TapeRestoreError(
          'UNSUPPORTED',
          `${content.kind} (an unreleased format) is not supported`,
          where,
        );
      case 'catalog-archive-v1.0':
      case 'catalog-archive-v1.1':
        log(`File ${fileNumber}: skip catalog archive`);
        await reader.skipToEnd();
        return;
      case 'chunk-archive': {
        const store = headerString(content, reader, 'store');
        const target = targetOf(store);
        log(
          `File ${fileNumber}: chunk archive for datastore '${store}'${target ? '' : ' (not mapped, skipped)'}`,
        );
        const digests: string[] = [];
        for await (const entry of chunkArchiveEntries(reader, drive.stats)) {
          digests.push(entry.digest);
          if (!target || seen.has(`${store}:${entry.digest}`)) continue;
          seen.add(`${store}:${entry.digest}`);
          await pool.submit(async () => {
            const blob = await verifier.verify(entry.digestBytes, entry.blob, entry.where);
            if ((await target.insertChunk(entry.digest, blob)) === 'inserted') {
              result.chunksRestored++;
              result.bytesRestored += blob.byteLength;
            } else {
              result.chunksAlreadyPresent++;
            }
          });
        }
        await reader.skipToEnd();
        catalog.chunkArchive(fileNumber, content.uuid, store, digests);
        return;
      }
      default: {
        const store = headerString(content, reader, 'store');
        const path = headerString(content, reader, 'snapshot');
        const snapshot = parseSnapshotPath(path);
        const key = `${store}:${path}`;
        const target = targetOf(store);
        log(`File ${fileNumber}: snapshot archive ${key}`);
        if (!target || (await target.snapshotExists(snapshot))) {
          await reader.skipToEnd();
          if (reader.incomplete) result.incompleteSnapshots.push(key);
          else {
            result.snapshotsSkipped.push(key);
            catalog.snapshot(fileNumber, content.uuid, store, path);
          }
          log(
            target
              ? `found snapshot ${path} on target datastore '${target.name}', skipping...`
              : `datastore '${store}' is not mapped, skipping ${path}`,
          );
          return;
        }
        const groupOwner = await target.createGroup(snapshot, owner);
        if (groupOwner !== owner) {
          throw new TapeRestoreError(
            'OWNER_MISMATCH',
            `restore owner '${owner}' does not own group ${path} (owner is '${groupOwner}')`,
            where,
          );
        }
        const staging = join(target.tempDir(mediaSet.uuid), store, path);
        try {
          await extractPxarSnapshot(reader, staging, path);
        } catch (error) {
          await rm(staging, { recursive: true, force: true });
          // An archive cut at end of media (INCOMPLETE, or without end marker) is written
          // again on a later tape: skip it. Anything else is damage.
          const cut =
            reader.incomplete ||
            (error instanceof TapeRestoreError && error.code === 'NO_END_MARKER');
          if (!cut) throw error;
          if (!reader.incomplete) await reader.skipToEnd().catch(() => {});
          log(`skip incomplete snapshot ${key}`);
          result.incompleteSnapshots.push(key);
          return;
        }
        const release = await target.lockGroup(snapshot);
        try {
          if (await target.snapshotExists(snapshot)) {
            result.snapshotsFailed.push({
              snapshot: key,
              reason: `snapshot ${path} already exists`,
            });
            log(`WARN: snapshot ${path} already exists on datastore '${target.name}'`);
          } else {
            await rename(staging, target.snapshotDir(snapshot));
            result.snapshotsRestored.push(key);
          }
        } finally {
          await release();
          await rm(staging, { recursive: true, force: true });
        }
        catalog.snapshot(fileNumber, content.uuid, store, path);
      }
    }
  }
}
