import { type ProgressListener, ProgressTracker, throwIfAborted } from '@x/blockio';
import type { MediaSet } from '../catalog/inventory.js';
import type { MediaSetCatalog } from '../catalog/media-set-catalog.js';
import type { Datastore } from '../datastore/datastore.js';
import { chunkArchiveEntries } from '../decode/chunk-archive.js';
import { headerString, readTapeContent } from '../decode/content.js';
import { TapeRestoreError } from '../errors.js';
import type { TapeDrive } from '../tape/tape-drive.js';
import { createChunkVerifier } from './chunk-verifier.js';
import { byMediaUuid, loadMember, type TaskLog } from './context.js';
import type { WantedChunks } from './phase1-snapshots.js';
import { WriterPool } from './writer-pool.js';

/** What phase 2 will read: per tape, per chunk archive file, the digests it must give. */
export interface ChunkReadPlan {
  /** mediaUuid -> file number -> { store, digests } */
  readonly files: Map<string, Map<number, { store: string; digests: Set<string> }>>;
  readonly alreadyPresent: number;
  /** Wanted by an index but absent from the catalogs (PBS ignores these silently). */
  readonly notInCatalog: number;
  readonly toRead: number;
}

/**
 * Which wanted chunks the target lacks, and where the catalogs say they are (§9
 * phase 2). `touch` decides presence as PBS does (cond_touch_chunk); a plan passes
 * false to only look.
 */
export async function planChunkReads(
  wanted: WantedChunks,
  targets: ReadonlyMap<string, Datastore>,
  catalog: MediaSetCatalog,
  touch: boolean,
): Promise<ChunkReadPlan> {
  const files: ChunkReadPlan['files'] = new Map();
  let alreadyPresent = 0;
  let notInCatalog = 0;
  let toRead = 0;
  for (const [store, digests] of wanted) {
    const target = targets.get(store);
    if (!target) continue;
    for (const digest of digests) {
      if (touch ? await target.touchChunk(digest) : await target.hasChunk(digest)) {
        alreadyPresent++;
        continue;
      }
      const hit = catalog.lookupChunk(store, digest);
      if (!hit) {
        notInCatalog++;
        continue;
      }
      let perFile = files.get(hit.mediaUuid);
      if (!perFile) {
        perFile = new Map();
        files.set(hit.mediaUuid, perFile);
      }
      let entry = perFile.get(hit.fileNumber);
      if (!entry) {
        entry = { store, digests: new Set() };
        perFile.set(hit.fileNumber, entry);
      }
      entry.digests.add(digest);
      toRead++;
    }
  }
  return { files, alreadyPresent, notInCatalog, toRead };
}

export interface ChunkRestoreResult {
  chunksRestored: number;
  /** Inserted meanwhile by someone else: only touched. */
  chunksTouched: number;
  bytesRestored: number;
  /** Listed by the catalog in a file that did not give them. */
  chunksNotFound: number;
}

export interface RestoreChunksOptions {
  writers?: number | undefined;
  /** Threads that check chunks (default: one per core, at most 4; 0 or 1: the calling thread). */
  verifyThreads?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressListener | undefined;
}

/**
 * Phase 2 (§9): per tape (ascending media uuid), per chunk archive (ascending file
 * number), decode entries — every entry's CRC checked, wanted or not (§11.7) — hand the
 * wanted ones to a bounded pool of writers that check CRC and SHA-256 again before
 * inserting, and leave the archive as soon as it has given every chunk wanted from it.
 */
export async function restoreChunks(
  drive: TapeDrive,
  mediaSet: MediaSet,
  plan: ChunkReadPlan,
  targets: ReadonlyMap<string, Datastore>,
  log: TaskLog,
  options: RestoreChunksOptions = {},
): Promise<ChunkRestoreResult> {
  const result: ChunkRestoreResult = {
    chunksRestored: 0,
    chunksTouched: 0,
    bytesRestored: 0,
    chunksNotFound: 0,
  };
  if (plan.toRead === 0) {
    log('All chunks are already present, skip phase 2...');
    return result;
  }
  log(`Phase 2: restore chunks to datastores`);
  const started = Date.now();
  const pool = new WriterPool(options.writers ?? 4);
  const progress = new ProgressTracker('restore chunks', plan.toRead, options.onProgress, {
    unit: 'items',
  });
  const verifier = createChunkVerifier(options.verifyThreads);
  try {
    for (const { mediaUuid, perFile } of byMediaUuid(
      [...plan.files].map(([mediaUuid, perFile]) => ({ mediaUuid, perFile })),
    )) {
      const member = mediaSet.members.find((m) => m.label.uuid === mediaUuid);
      if (!member)
        throw new TapeRestoreError(
          'MEDIA_SET_INCOMPLETE',
          `media ${mediaUuid} is not a member of media set ${mediaSet.uuid}`,
        );
      await loadMember(drive, member, mediaSet, log);
      for (const fileNumber of [...perFile.keys()].sort((a, b) => a - b)) {
        throwIfAborted(options.signal);
        const want = perFile.get(fileNumber) as { store: string; digests: Set<string> };
        const target = targets.get(want.store) as Datastore;
        if (drive.currentFileNumber() !== fileNumber) await drive.moveToFile(fileNumber);
        const next = await drive.readNextFile();
        const label = member.label.label_text;
        if (next.kind !== 'file') {
          throw new TapeRestoreError(
            'UNEXPECTED_FILE',
            `file ${fileNumber} is ${next.kind === 'filemark' ? 'empty' : 'past the end of the tape'}, the catalog says it is a chunk archive`,
            { tape: label, fileNumber },
          );
        }
        try {
          const content = await readTapeContent(next.reader);
          if (content.kind === 'chunk-archive-v1.0') {
            throw new TapeRestoreError(
              'UNSUPPORTED',
              'chunk archive v1.0 (unreleased format) is not supported',
              next.reader.where('MediaContentHeader'),
            );
          }
          if (content.kind !== 'chunk-archive') {
            throw new TapeRestoreError(
              'UNEXPECTED_FILE',
              `unexpected file type: ${content.kind}, the catalog says it is a chunk archive`,
              next.reader.where('MediaContentHeader'),
            );
          }
          const store = headerString(content, next.reader, 'store');
          log(`File ${fileNumber}: chunk archive for datastore '${store}'`);
          if (store !== want.store) {
            throw new TapeRestoreError(
              'UNEXPECTED_FILE',
              `the chunk archive is for datastore '${store}', the catalog says '${want.store}'`,
              next.reader.where('chunk archive header'),
            );
          }
          for await (const entry of chunkArchiveEntries(next.reader, drive.stats)) {
            if (!want.digests.delete(entry.digest)) continue;
            await pool.submit(async () => {
              const blob = await verifier.verify(entry.digestBytes, entry.blob, entry.where);
              const outcome = await target.insertChunk(entry.digest, blob);
              if (outcome === 'inserted') {
                result.chunksRestored++;
                result.bytesRestored += blob.byteLength;
              } else {
                result.chunksTouched++;
              }
              progress.advance(1);
            });
            if (want.digests.size === 0) break;
          }
        } finally {
          await next.reader.close();
        }
        if (want.digests.size > 0) {
          result.chunksNotFound += want.digests.size;
          log(
            `WARN: file ${fileNumber} of tape ${label} did not hold ${want.digests.size} chunks its catalog lists`,
          );
        }
      }
    }
    await pool.drain();
  } finally {
    // Nothing may still be writing when the caller cleans up.
    await pool.drain().catch(() => {});
    await verifier.close();
  }
  for (const target of new Set(targets.values())) await target.syncChunks();
  progress.finish();
  const seconds = Math.max(0.001, (Date.now() - started) / 1000);
  log(
    `restored ${result.bytesRestored} bytes (${(result.bytesRestored / 1e6 / seconds).toFixed(2)} MB/s)`,
  );
  return result;
}
