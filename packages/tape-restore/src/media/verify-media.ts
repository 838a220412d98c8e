import { type LongRunningOptions, ProgressTracker, throwIfAborted } from '@x/blockio';
import { decodeBlob, verifyChunk } from '../blob.js';
import { parseMediaCatalog } from '../catalog/media-catalog.js';
import { chunkArchiveEntries } from '../decode/chunk-archive.js';
import { headerString, readTapeContent } from '../decode/content.js';
import { readTapeLabels } from '../decode/labels.js';
import { decodeFlatPxar } from '../decode/pxar.js';
import { TapeRestoreError } from '../errors.js';
import { parseChunkIndex } from '../index-file.js';
import { MANIFEST_BLOB_NAME, parseManifest } from '../manifest.js';
import type { TapeDrive } from '../tape/tape-drive.js';
import type { TapeFileReader } from '../tape/tape-file-reader.js';

/** One problem found on the tape, and where. */
export interface MediaDamage {
  readonly fileNumber: number;
  readonly block: number | undefined;
  readonly offset: number | bigint | undefined;
  readonly code: string;
  readonly message: string;
}

export interface VerifiedFile {
  readonly fileNumber: number;
  /** Content kind, `filemark` for an empty file, `unreadable` when even the header failed. */
  readonly kind: string;
  /** Store (and snapshot) the archive header names. */
  readonly store?: string | undefined;
  readonly snapshot?: string | undefined;
  /** Chunk entries checked (chunk archives), files checked (snapshot archives). */
  readonly items: number;
  /** The stream was finished INCOMPLETE (a snapshot or catalog archive cut at end of media). */
  readonly incomplete: boolean;
  /** The last chunk entry was cut short at end of media (§11.1; not damage). */
  readonly cut: boolean;
  readonly sound: boolean;
}

export interface VerifyMediaResult {
  readonly label: string;
  readonly mediaUuid: string;
  readonly mediaSetUuid: string | undefined;
  readonly seqNr: number | undefined;
  readonly files: VerifiedFile[];
  readonly damage: MediaDamage[];
  /** True when every block, header, blob CRC and chunk digest checked out. */
  readonly sound: boolean;
}

export interface VerifyMediaOptions extends LongRunningOptions {
  log?: ((line: string) => void) | undefined;
}

/**
 * Reads every file of a tape and checks every block, header, blob CRC and (for
 * unencrypted chunks) SHA-256 digest; snapshot archives have their pxar walked, their
 * manifest parsed and index files checked; catalog archives are parsed. Damage is
 * collected, not thrown: the walk goes on with the next entry or file.
 */
export async function verifyMedia(
  drive: TapeDrive,
  label: string,
  options: VerifyMediaOptions = {},
): Promise<VerifyMediaResult> {
  const log = options.log ?? (() => {});
  const damage: MediaDamage[] = [];
  const files: VerifiedFile[] = [];
  const record = (fileNumber: number, error: unknown) => {
    if (!(error instanceof TapeRestoreError)) throw error;
    damage.push({
      fileNumber,
      block: error.block,
      offset: error.offset,
      code: error.code,
      message: error.describe(),
    });
  };
  await drive.loadMedia(label);
  const labels = await readTapeLabels(drive);
  files.push({
    fileNumber: 0,
    kind: 'media-label',
    items: 0,
    incomplete: false,
    cut: false,
    sound: true,
  });
  if (labels.mediaSetLabel) {
    files.push({
      fileNumber: 1,
      kind: 'media-set-label',
      items: 0,
      incomplete: false,
      cut: false,
      sound: true,
    });
  }
  const progress = new ProgressTracker('verify', drive.fileCount(), options.onProgress, {
    unit: 'items',
  });
  progress.set(drive.currentFileNumber());
  for (;;) {
    throwIfAborted(options.signal);
    const next = await drive.readNextFile();
    if (next.kind === 'end-of-data') break;
    if (next.kind === 'filemark') {
      log(`File ${next.fileNumber}: skip unexpected filemark`);
      files.push({
        fileNumber: next.fileNumber,
        kind: 'filemark',
        items: 0,
        incomplete: false,
        cut: false,
        sound: true,
      });
      continue;
    }
    const before = damage.length;
    const file = await verifyFile(next.reader, drive, (error) =>
      record(next.fileNumber, error),
    ).catch((error) => {
      record(next.fileNumber, error);
      return { kind: 'unreadable', items: 0, incomplete: false, cut: false };
    });
    await next.reader.close();
    const sound = damage.length === before;
    log(`File ${next.fileNumber}: ${describeFile(file)}${sound ? '' : ' - DAMAGED'}`);
    files.push({ fileNumber: next.fileNumber, ...file, sound });
    progress.advance(1);
  }
  progress.finish();
  return {
    label,
    mediaUuid: labels.mediaLabel.uuid,
    mediaSetUuid: labels.mediaSetLabel?.uuid,
    seqNr: labels.mediaSetLabel?.seq_nr,
    files,
    damage,
    sound: damage.length === 0,
  };
}

function describeFile(file: Omit<VerifiedFile, 'fileNumber' | 'sound'>): string {
  if (file.kind === 'chunk-archive')
    return `chunk archive for datastore '${file.store}' (${file.items} chunks${file.cut ? ', last cut at end of media' : ''})`;
  if (file.kind.startsWith('snapshot-archive'))
    return `snapshot archive ${file.store}:${file.snapshot}${file.incomplete ? ' (incomplete)' : ''}`;
  return file.kind;
}

async function verifyFile(
  reader: TapeFileReader,
  drive: TapeDrive,
  report: (error: unknown) => void,
): Promise<Omit<VerifiedFile, 'fileNumber' | 'sound'>> {
  const content = await readTapeContent(reader);
  const base = { kind: content.kind as string, items: 0, incomplete: false, cut: false };
  if (content.kind === 'media-label' || content.kind === 'media-set-label') {
    report(
      new TapeRestoreError(
        'UNEXPECTED_FILE',
        `a ${content.kind} in the data area of the tape`,
        reader.where('MediaContentHeader'),
      ),
    );
    await reader.skipToEnd();
    return base;
  }
  if (content.kind === 'chunk-archive' || content.kind === 'chunk-archive-v1.0') {
    const store = headerString(content, reader, 'store');
    const end = { cut: false };
    let items = 0;
    for await (const entry of chunkArchiveEntries(reader, drive.stats, end, (error) =>
      report(error),
    )) {
      items++;
      try {
        await verifyChunk(entry.digestBytes, entry.blob, entry.where);
      } catch (error) {
        report(error);
      }
    }
    await reader.skipToEnd();
    return { ...base, store, items, cut: end.cut, incomplete: reader.incomplete };
  }
  if (content.kind.startsWith('snapshot-archive')) {
    const store = headerString(content, reader, 'store');
    const snapshot = headerString(content, reader, 'snapshot');
    const blobs = new Map<string, Buffer>();
    let pxarFiles = 0;
    try {
      await decodeFlatPxar(reader, async (file, chunks) => {
        const parts: Buffer[] = [];
        for await (const part of chunks) parts.push(part);
        blobs.set(file.name, Buffer.concat(parts));
        pxarFiles++;
      });
      await reader.skipToEnd();
    } catch (error) {
      // An archive cut at end of media is expected to end early (it was rewritten).
      await reader.skipToEnd().catch(() => {});
      if (reader.incomplete)
        return { ...base, store, snapshot, items: pxarFiles, incomplete: true };
      throw error;
    }
    const where = { ...reader.where('snapshot archive'), offset: undefined, block: undefined };
    for (const [name, bytes] of blobs) {
      try {
        if (name.endsWith('.blob'))
          await decodeBlob(bytes, { ...where, structure: name }).catch((error) => {
            if (error instanceof TapeRestoreError && error.code === 'UNSUPPORTED')
              return Buffer.alloc(0);
            throw error;
          });
        if (name.endsWith('.fidx') || name.endsWith('.didx'))
          parseChunkIndex(bytes, name.endsWith('.fidx') ? 'fidx' : 'didx', {
            ...where,
            structure: name,
          });
      } catch (error) {
        report(error);
      }
    }
    const manifest = blobs.get(MANIFEST_BLOB_NAME);
    if (!manifest)
      report(
        new TapeRestoreError(
          'BAD_MANIFEST',
          `the snapshot archive of ${snapshot} has no manifest`,
          where,
        ),
      );
    else {
      try {
        parseManifest((await decodeBlob(manifest, where)).toString('utf8'), where);
      } catch (error) {
        report(error);
      }
    }
    return { ...base, store, snapshot, items: pxarFiles, incomplete: reader.incomplete };
  }
  // Catalog archives: the raw catalog of an earlier (or this) member.
  const parts: Buffer[] = [];
  const slice = Buffer.alloc(1 << 20);
  for (;;) {
    const got = await reader.read(slice);
    if (got === 0) break;
    parts.push(Buffer.from(slice.subarray(0, got)));
  }
  if (!reader.incomplete) {
    try {
      parseMediaCatalog(Buffer.concat(parts), reader.location.path);
    } catch (error) {
      report(error);
    }
  }
  return { ...base, incomplete: reader.incomplete };
}
