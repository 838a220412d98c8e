import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK_ARCHIVE_SLICE_SIZE, ChunkArchiveEntryHeader } from '../format/chunk-archive.js';
import { MediaContentHeader } from '../format/content-header.js';
import { DynamicIndexEntry, INDEX_HEADER_SIZE } from '../format/index-file.js';
import {
  PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_0,
  PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_1,
  PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0,
  PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1,
  PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0,
  PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1,
  PROXMOX_BACKUP_MEDIA_LABEL_MAGIC_1_0,
  PROXMOX_BACKUP_MEDIA_SET_LABEL_MAGIC_1_0,
  PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1,
  PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_2,
} from '../format/magics.js';
import {
  CATALOG_ENTRY_CHUNK,
  CATALOG_ENTRY_CHUNK_ARCHIVE_END,
  CATALOG_ENTRY_CHUNK_ARCHIVE_START,
  CATALOG_ENTRY_LABEL,
  CATALOG_ENTRY_SNAPSHOT,
  ChunkArchiveEnd,
  ChunkArchiveStart,
  LabelEntry,
  SnapshotEntry,
} from '../format/media-catalog.js';
import { encodeFlatPxar, type PxarWriterFile } from './pxar-writer.js';
import { VirtualTapeWriter, writeJsonAtomic } from './tape-writer.js';

export interface MediaSetSource {
  /** Datastore name as PBS knows it (written into archive headers and catalogs). */
  readonly store: string;
  /** Its directory. */
  readonly path: string;
  /** Printed snapshot paths to back up, in order (`ns/a/vm/100/2021-…Z`). */
  readonly snapshots: readonly string[];
}

export interface WriteMediaSetOptions {
  /** The virtual tape drive directory (created). */
  readonly driveDir: string;
  /** The tape status directory: `inventory.json` and `<uuid>.log` (created/merged). */
  readonly statusDir: string;
  readonly pool: string;
  /** Tape labels are `${labelPrefix}${seq}` with seq from 1, e.g. `A00001`. */
  readonly labelPrefix: string;
  /** Bytes per virtual tape (PBS default 64 MiB). */
  readonly maxTapeSize?: number;
  readonly sources: readonly MediaSetSource[];
  /** Order of chunks inside an archive; PBS sorts by inode, never by index (§11.8). */
  readonly chunkOrder?: 'index' | 'digest' | 'reverse';
  /** `location` written to the inventory. Default `offline`. */
  readonly location?: string;
  /** Fixed media-set uuid (default random). */
  readonly mediaSetUuid?: string;
  readonly ctime?: number;
}

export interface WrittenTape {
  readonly label: string;
  readonly uuid: string;
  readonly seqNr: number;
  /** What each file holds, by file number. */
  readonly files: string[];
}

export interface WrittenMediaSet {
  readonly mediaSetUuid: string;
  readonly pool: string;
  readonly tapes: WrittenTape[];
  /** Chunks cut at end of media and written again on the next tape. */
  readonly cutChunks: string[];
  /** Snapshot archives finished INCOMPLETE and written again on the next tape. */
  readonly incompleteSnapshots: string[];
}

const uuidString = (bytes: Uint8Array) => {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const uuidBytes = (text: string) => Buffer.from(text.replaceAll('-', ''), 'hex');
const newUuid = () => {
  const bytes = randomBytes(16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  return uuidString(bytes);
};

interface TapeState {
  readonly writer: VirtualTapeWriter;
  readonly label: string;
  readonly uuid: string;
  readonly seqNr: number;
  readonly catalog: Buffer[];
  readonly files: string[];
}

/**
 * Writes datastore snapshots to a media set on a PBS virtual tape drive the way a
 * PBS backup job does (pbs-tape.md §1, §3, §7, §11): per snapshot, chunk archives of
 * the chunks not yet in the media set, then the snapshot archive; at logical end of
 * media the chunk being written is cut (and written whole on the next tape), an
 * unfinished snapshot archive is finished INCOMPLETE (and written again); every new
 * tape starts with its labels and the catalog archives of the earlier members.
 * Writes the per-tape catalogs and merges the tapes into `inventory.json`.
 *
 * Fixture support: it follows the spec independently of the restore's code paths.
 */
export async function writeMediaSet(options: WriteMediaSetOptions): Promise<WrittenMediaSet> {
  const maxTapeSize = options.maxTapeSize ?? 64 * 1024 * 1024;
  const mediaSetUuid = options.mediaSetUuid ?? newUuid();
  const ctime = options.ctime ?? 1_700_000_000;
  const namespaced = options.sources.some((s) => s.snapshots.some((p) => p.startsWith('ns/')));
  await mkdir(options.driveDir, { recursive: true });
  await mkdir(options.statusDir, { recursive: true });
  const tapes: TapeState[] = [];
  const cutChunks: string[] = [];
  const incompleteSnapshots: string[] = [];
  const written = new Set<string>(); // store:digest already in the media set

  const contentHeader = (magic: Uint8Array, json: unknown) => {
    const body = Buffer.from(JSON.stringify(json, null, 2));
    const head = MediaContentHeader.encode({
      magic: PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0,
      contentMagic: magic,
      uuid: randomBytes(16),
      ctime: BigInt(ctime),
      size: body.byteLength,
      partNumber: 0,
      reserved: new Uint8Array(3),
    });
    return { bytes: Buffer.concat([head, body]), uuid: head.subarray(16, 32) };
  };
  const catalogRecord = (tape: TapeState, type: number, struct: Uint8Array, tail?: Uint8Array) => {
    tape.catalog.push(Buffer.from([type]), Buffer.from(struct));
    if (tail) tape.catalog.push(Buffer.from(tail));
  };

  const newTape = async (): Promise<TapeState> => {
    const seqNr = tapes.length;
    const label = `${options.labelPrefix}${String(seqNr + 1).padStart(5, '0')}`;
    const uuid = newUuid();
    const writer = new VirtualTapeWriter(options.driveDir, label, maxTapeSize);
    const tape: TapeState = {
      writer,
      label,
      uuid,
      seqNr,
      catalog: [Buffer.from(PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1)],
      files: [],
    };
    const labelStream = writer.startFile();
    labelStream.write(
      contentHeader(PROXMOX_BACKUP_MEDIA_LABEL_MAGIC_1_0, {
        label_text: label,
        uuid,
        ctime,
        pool: options.pool,
      }).bytes,
    );
    labelStream.finish();
    await writer.commitFile(labelStream);
    tape.files.push('media label');
    catalogRecord(
      tape,
      CATALOG_ENTRY_LABEL,
      LabelEntry.encode({ fileNumber: 0n, uuid: uuidBytes(uuid), seqNr: 0n }),
    );
    const setStream = writer.startFile();
    setStream.write(
      contentHeader(PROXMOX_BACKUP_MEDIA_SET_LABEL_MAGIC_1_0, {
        pool: options.pool,
        uuid: mediaSetUuid,
        seq_nr: seqNr,
        ctime,
      }).bytes,
    );
    setStream.finish();
    await writer.commitFile(setStream);
    tape.files.push('media-set label');
    catalogRecord(
      tape,
      CATALOG_ENTRY_LABEL,
      LabelEntry.encode({ fileNumber: 1n, uuid: uuidBytes(mediaSetUuid), seqNr: BigInt(seqNr) }),
    );
    tapes.push(tape);
    for (const earlier of tapes.slice(0, -1)) await writeCatalogArchive(tape, earlier);
    return tape;
  };

  const writeCatalogArchive = async (tape: TapeState, of: TapeState) => {
    const stream = tape.writer.startFile();
    const magic = namespaced
      ? PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_1
      : PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_0;
    stream.write(
      contentHeader(magic, { uuid: of.uuid, media_set_uuid: mediaSetUuid, seq_nr: of.seqNr }).bytes,
    );
    stream.write(Buffer.concat(of.catalog));
    stream.finish();
    await tape.writer.commitFile(stream);
    tape.files.push(`catalog archive of ${of.label}`);
  };

  let tape = await newTape();
  let tapeFull = false;
  const nextTapeIfFull = async () => {
    if (tapeFull) {
      tape = await newTape();
      tapeFull = false;
    }
  };

  for (const source of options.sources) {
    for (const snapshot of source.snapshots) {
      const dir = join(source.path, snapshot);
      const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
      // Chunks of this snapshot not yet in the media set, in the job's chunk order.
      const digests: string[] = [];
      for (const name of names) {
        if (!name.endsWith('.fidx') && !name.endsWith('.didx')) continue;
        for (const digest of indexDigests(
          await readFile(join(dir, name)),
          name.endsWith('.fidx'),
        )) {
          if (!written.has(`${source.store}:${digest}`) && !digests.includes(digest))
            digests.push(digest);
        }
      }
      if (options.chunkOrder === 'digest') digests.sort();
      else if (options.chunkOrder !== 'index') digests.reverse();
      let pending = digests;
      while (pending.length > 0) {
        await nextTapeIfFull();
        const fresh = tape.files.length <= 2 + tape.seqNr;
        const result = await writeChunkArchive(tape, source, pending);
        if (result.done.length === 0 && fresh) {
          throw new Error(
            `chunk ${pending[0]} does not fit on an empty tape of ${maxTapeSize} bytes`,
          );
        }
        for (const d of result.done) written.add(`${source.store}:${d}`);
        if (result.cut) cutChunks.push(result.cut);
        pending = pending.slice(result.done.length);
        if (result.leom) tapeFull = true;
      }
      for (;;) {
        await nextTapeIfFull();
        const fresh = tape.files.length <= 2 + tape.seqNr;
        const complete = await writeSnapshotArchive(tape, source, snapshot, dir, names);
        if (!complete.ok && fresh) {
          throw new Error(
            `the snapshot archive of ${snapshot} does not fit on an empty tape of ${maxTapeSize} bytes`,
          );
        }
        if (complete.leom) tapeFull = true;
        if (complete.ok) break;
        incompleteSnapshots.push(`${source.store}:${snapshot}`);
      }
    }
  }
  // §11.4: the end-of-job catalog archive goes on the next tape when it does not fit.
  await nextTapeIfFull();
  await writeCatalogArchive(tape, tape);

  async function writeChunkArchive(t: TapeState, source: MediaSetSource, digests: string[]) {
    const stream = t.writer.startFile();
    const header = contentHeader(PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1, { store: source.store });
    stream.write(header.bytes);
    const done: string[] = [];
    let cut: string | undefined;
    let leom = stream.leom;
    for (const digest of digests) {
      if (leom) break;
      const blob = await readFile(join(source.path, '.chunks', digest.slice(0, 4), digest));
      // §11.3: the entry header is written without an end-of-media check.
      stream.write(
        ChunkArchiveEntryHeader.encode({
          magic: PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0,
          digest: Buffer.from(digest, 'hex'),
          size: BigInt(blob.byteLength),
        }),
      );
      let complete = true;
      for (let at = 0; at < blob.byteLength; at += CHUNK_ARCHIVE_SLICE_SIZE) {
        const end = Math.min(blob.byteLength, at + CHUNK_ARCHIVE_SLICE_SIZE);
        if (stream.write(blob.subarray(at, end))) {
          leom = true;
          if (end < blob.byteLength) complete = false;
          break;
        }
      }
      if (!complete) {
        cut = digest;
        break;
      }
      done.push(digest);
    }
    // §11.1: a cut chunk archive is a normal END_OF_STREAM stream, not INCOMPLETE.
    stream.finish(false);
    const fileNumber = await t.writer.commitFile(stream);
    t.files.push(
      `chunk archive for datastore '${source.store}' (${done.length} chunks${cut ? `, ${cut} cut` : ''})`,
    );
    catalogRecord(
      t,
      CATALOG_ENTRY_CHUNK_ARCHIVE_START,
      ChunkArchiveStart.encode({
        fileNumber: BigInt(fileNumber),
        uuid: header.uuid,
        storeNameLen: Buffer.byteLength(source.store),
      }),
      Buffer.from(source.store),
    );
    for (const digest of done) catalogRecord(t, CATALOG_ENTRY_CHUNK, Buffer.from(digest, 'hex'));
    catalogRecord(
      t,
      CATALOG_ENTRY_CHUNK_ARCHIVE_END,
      ChunkArchiveEnd.encode({ fileNumber: BigInt(fileNumber), uuid: header.uuid }),
    );
    return { done, cut, leom: leom || stream.leom };
  }

  async function writeSnapshotArchive(
    t: TapeState,
    source: MediaSetSource,
    snapshot: string,
    dir: string,
    names: string[],
  ) {
    const stream = t.writer.startFile();
    const magic = snapshot.startsWith('ns/')
      ? PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_2
      : PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1;
    const header = contentHeader(magic, { snapshot, store: source.store });
    // index.json.blob first, then the other files, client.log.blob last (§3).
    const ordered = [
      'index.json.blob',
      ...names.filter((n) => n !== 'index.json.blob' && n !== 'client.log.blob' && n !== 'owner'),
      ...(names.includes('client.log.blob') ? ['client.log.blob'] : []),
    ];
    const files: PxarWriterFile[] = [];
    for (const name of ordered) {
      const path = join(dir, name);
      const info = await stat(path);
      files.push({
        name,
        data: await readFile(path),
        mode: info.mode,
        uid: info.uid,
        gid: info.gid,
        mtimeSecs: BigInt(Math.floor(info.mtimeMs / 1000)),
        mtimeNanos: 0,
      });
    }
    const data = Buffer.concat([header.bytes, encodeFlatPxar(files)]);
    let ok = true;
    for (let at = 0; at < data.byteLength; at += 65536) {
      const end = Math.min(data.byteLength, at + 65536);
      if (stream.write(data.subarray(at, end)) && end < data.byteLength) {
        ok = false;
        break;
      }
    }
    stream.finish(!ok);
    const fileNumber = await t.writer.commitFile(stream);
    t.files.push(`snapshot archive ${source.store}:${snapshot}${ok ? '' : ' (incomplete)'}`);
    if (ok) {
      const store = Buffer.from(source.store);
      const name = Buffer.from(snapshot);
      catalogRecord(
        t,
        CATALOG_ENTRY_SNAPSHOT,
        SnapshotEntry.encode({
          fileNumber: BigInt(fileNumber),
          uuid: header.uuid,
          storeNameLen: store.byteLength,
          nameLen: name.byteLength,
        }),
        Buffer.concat([store, Buffer.from(':'), name]),
      );
    }
    return { ok, leom: stream.leom };
  }

  // Catalogs, then the inventory (merged with what is there, sorted by raw uuid bytes).
  for (const t of tapes)
    await writeFile(join(options.statusDir, `${t.uuid}.log`), Buffer.concat(t.catalog));
  const inventoryPath = join(options.statusDir, 'inventory.json');
  let inventory: Array<{ id: { label: { uuid: string } } }> = [];
  try {
    inventory = JSON.parse(await readFile(inventoryPath, 'utf8'));
  } catch {
    inventory = [];
  }
  for (const t of tapes) {
    inventory.push({
      id: {
        label: { label_text: t.label, uuid: t.uuid, ctime, pool: options.pool } as never,
        media_set_label: { pool: options.pool, uuid: mediaSetUuid, seq_nr: t.seqNr, ctime },
      } as never,
      location: options.location ?? 'offline',
      status: t === tapes[tapes.length - 1] ? 'writable' : 'full',
      bytes_used: t.writer.fileSizes.reduce((a, b) => a + b, 0),
    } as never);
  }
  inventory.sort((a, b) =>
    a.id.label.uuid < b.id.label.uuid ? -1 : a.id.label.uuid > b.id.label.uuid ? 1 : 0,
  );
  await writeJsonAtomic(inventoryPath, inventory);
  return {
    mediaSetUuid,
    pool: options.pool,
    tapes: tapes.map((t) => ({ label: t.label, uuid: t.uuid, seqNr: t.seqNr, files: t.files })),
    cutChunks,
    incompleteSnapshots,
  };
}

function indexDigests(file: Buffer, fixed: boolean): string[] {
  const digests: string[] = [];
  if (fixed) {
    for (let at = INDEX_HEADER_SIZE; at + 32 <= file.byteLength; at += 32)
      digests.push(file.toString('hex', at, at + 32));
  } else {
    for (
      let at = INDEX_HEADER_SIZE;
      at + DynamicIndexEntry.size <= file.byteLength;
      at += DynamicIndexEntry.size
    ) {
      digests.push(file.toString('hex', at + 8, at + 40));
    }
  }
  return digests;
}
