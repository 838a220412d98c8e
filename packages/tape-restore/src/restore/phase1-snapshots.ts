import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromSystemError, throwIfAborted } from '@x/blockio';
import { decodeBlob, encodeBlob } from '../blob.js';
import type { MediaSet } from '../catalog/inventory.js';
import { headerString, readTapeContent } from '../decode/content.js';
import { decodeFlatPxar } from '../decode/pxar.js';
import { TapeRestoreError } from '../errors.js';
import { parseChunkIndex } from '../index-file.js';
import {
  MANIFEST_BLOB_NAME,
  type Manifest,
  manifestWithoutVerifyState,
  parseManifest,
} from '../manifest.js';
import type { TapeDrive } from '../tape/tape-drive.js';
import type { TapeFileReader } from '../tape/tape-file-reader.js';
import { byMediaUuid, loadMember, type TaskLog } from './context.js';
import type { SelectedSnapshot } from './select.js';

/** Chunks the restored snapshots need: source store -> digests (hex). */
export type WantedChunks = Map<string, Set<string>>;

/**
 * Phase 1 (§9): reads the selected snapshot archives — tapes in ascending media-uuid
 * order, files ascending — into `<target>/.tmp/<media-set>/<store>/<snapshot>`, with
 * the manifest re-encoded without verify_state and written last. Returns the digests
 * their `.fidx`/`.didx` indexes reference, per source store.
 */
export async function restoreSnapshotArchives(
  drive: TapeDrive,
  mediaSet: MediaSet,
  selected: readonly SelectedSnapshot[],
  log: TaskLog,
  signal?: AbortSignal,
): Promise<WantedChunks> {
  const wanted: WantedChunks = new Map();
  const byMedia = new Map<string, SelectedSnapshot[]>();
  for (const item of selected) {
    const list = byMedia.get(item.mediaUuid) ?? [];
    list.push(item);
    byMedia.set(item.mediaUuid, list);
  }
  log(`Phase 1: temporarily restore snapshots to temp dir`);
  for (const { mediaUuid, items } of byMediaUuid(
    [...byMedia].map(([mediaUuid, items]) => ({ mediaUuid, items })),
  )) {
    const member = mediaSet.members.find((m) => m.label.uuid === mediaUuid);
    if (!member)
      throw new TapeRestoreError(
        'MEDIA_SET_INCOMPLETE',
        `media ${mediaUuid} is not a member of media set ${mediaSet.uuid}`,
      );
    await loadMember(drive, member, mediaSet, log);
    for (const item of [...items].sort((a, b) => a.fileNumber - b.fileNumber)) {
      throwIfAborted(signal);
      if (drive.currentFileNumber() !== item.fileNumber) await drive.moveToFile(item.fileNumber);
      const next = await drive.readNextFile();
      if (next.kind !== 'file') {
        throw new TapeRestoreError(
          'UNEXPECTED_FILE',
          `file ${item.fileNumber} is ${next.kind === 'filemark' ? 'empty' : 'past the end of the tape'}, the catalog says it holds ${item.path}`,
          { tape: item.label, fileNumber: item.fileNumber },
        );
      }
      try {
        const dir = join(item.target.tempDir(mediaSet.uuid), item.sourceStore, item.path);
        log(`File ${item.fileNumber}: snapshot archive ${item.sourceStore}:${item.path}`);
        const manifest = await extractSnapshotArchive(next.reader, item, dir);
        for (const digest of await indexDigests(dir, item, manifest)) {
          let set = wanted.get(item.sourceStore);
          if (!set) {
            set = new Set();
            wanted.set(item.sourceStore, set);
          }
          set.add(digest);
        }
      } finally {
        await next.reader.close();
      }
    }
  }
  return wanted;
}

/** The last extension replaced by `.tmp` (§10: `x.img.fidx` -> `x.img.tmp`). */
export function stagingName(name: string): string {
  const dot = name.lastIndexOf('.');
  return `${dot > 0 ? name.slice(0, dot) : name}.tmp`;
}

async function extractSnapshotArchive(
  reader: TapeFileReader,
  item: SelectedSnapshot,
  dir: string,
): Promise<Manifest> {
  const content = await readTapeContent(reader);
  if (content.kind !== 'snapshot-archive-v1.1' && content.kind !== 'snapshot-archive-v1.2') {
    throw new TapeRestoreError(
      'UNEXPECTED_FILE',
      `unexpected file type: ${content.kind}, expected the snapshot archive of ${item.path}`,
      reader.where('MediaContentHeader'),
    );
  }
  const store = headerString(content, reader, 'store');
  const snapshot = headerString(content, reader, 'snapshot');
  if (store !== item.sourceStore || snapshot !== item.path) {
    throw new TapeRestoreError(
      'UNEXPECTED_FILE',
      `the file holds ${store}:${snapshot}, the catalog says ${item.sourceStore}:${item.path}`,
      reader.where('snapshot archive header'),
    );
  }
  return extractPxarSnapshot(reader, dir, item.path);
}

/**
 * Decodes the pxar of a snapshot archive (after its header) into `dir`: each file
 * under its staging name, then renamed (§10); the manifest re-encoded without
 * verify_state and written last. Then checks the rest of the block stream.
 */
export async function extractPxarSnapshot(
  reader: TapeFileReader,
  dir: string,
  snapshotPath: string,
): Promise<Manifest> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let manifestBlob: Buffer | undefined;
  const manifestWhere = reader.where('pxar archive');
  await decodeFlatPxar(reader, async (file, chunks) => {
    if (file.name === MANIFEST_BLOB_NAME) {
      const parts: Buffer[] = [];
      for await (const part of chunks) parts.push(part);
      manifestBlob = Buffer.concat(parts);
      return;
    }
    const staging = join(dir, stagingName(file.name));
    const handle = await open(staging, 'w', 0o600).catch((error) => {
      throw fromSystemError(error, 'create a file of the snapshot', { path: staging });
    });
    try {
      for await (const part of chunks) await handle.write(part);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(staging, join(dir, file.name));
  });
  if (manifestBlob === undefined) {
    throw new TapeRestoreError(
      'BAD_MANIFEST',
      `the snapshot archive of ${snapshotPath} has no ${MANIFEST_BLOB_NAME}`,
      manifestWhere,
    );
  }
  // Reaching the END_OF_STREAM block checks the rest of the block stream too.
  await reader.skipToEnd();
  const where = { ...manifestWhere, structure: `manifest of ${snapshotPath}` };
  const manifest = parseManifest((await decodeBlob(manifestBlob, where)).toString('utf8'), where);
  const blob = await encodeBlob(Buffer.from(manifestWithoutVerifyState(manifest)));
  const staging = join(dir, stagingName(MANIFEST_BLOB_NAME));
  const handle = await open(staging, 'w', 0o600);
  try {
    await handle.writeFile(blob);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(staging, join(dir, MANIFEST_BLOB_NAME));
  return manifest;
}

async function indexDigests(
  dir: string,
  item: SelectedSnapshot,
  manifest: Manifest,
): Promise<string[]> {
  const digests: string[] = [];
  for (const file of manifest.files) {
    if (file.kind === 'blob') continue;
    const path = join(dir, file.filename);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new TapeRestoreError(
        'BAD_MANIFEST',
        `the manifest of ${item.path} lists ${file.filename}, which the archive does not hold`,
        { path, tape: item.label, fileNumber: item.fileNumber, cause: error },
      );
    }
    digests.push(
      ...parseChunkIndex(bytes, file.kind, { path, tape: item.label, fileNumber: item.fileNumber })
        .digests,
    );
  }
  return digests;
}
