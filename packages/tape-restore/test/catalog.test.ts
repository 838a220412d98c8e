import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkArchiveEntryHeader } from '../src/format/chunk-archive.js';
import { MediaContentHeader } from '../src/format/content-header.js';
import {
  PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0,
  PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1,
  PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0,
  PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1,
} from '../src/format/magics.js';
import {
  assembleMediaSet,
  chunkArchiveEntries,
  decodeFlatPxar,
  loadInventory,
  newTapeReadStats,
  parseInventory,
  parseMediaCatalog,
  readTapeContent,
  TapeRestoreError,
} from '../src/index.js';
import { encodeDataBlob, encodeFlatPxar, encodeZstdFrame } from '../src/testing/index.js';
import { runnyBytes, type TapeFixture, tapeFixture } from './support/fixtures.js';
import { S_IFDIR, S_IFLNK_FOR_TEST } from './support/modes.js';
import { blockStream, flip, virtualTape } from './support/tape-files.js';

let fixture: TapeFixture;
let temp: TempDir;
let counter = 0;
beforeAll(async () => {
  fixture = await tapeFixture();
  temp = await makeTempDir('tape-catalog-');
});
const openReaders: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const reader of openReaders) await reader.close();
  await temp.remove();
});

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TapeRestoreError);
    return (error as TapeRestoreError).code;
  }
  throw new Error('did not throw');
};

describe('zstd frames of the fixture writer', () => {
  it('are read by the real zstd, with and without content size', async () => {
    const data = runnyBytes(400_000, 11);
    for (const sized of [true, false]) {
      const path = temp.file(`frame-${sized}.zst`);
      await writeFile(path, encodeZstdFrame(data, sized));
      await runPeerOk('zstd', ['-d', '-f', '-q', path, '-o', `${path}.out`]);
      expect((await readFile(`${path}.out`)).equals(data)).toBe(true);
    }
  });
});

describe('media catalogs', () => {
  const firstCatalog = async () => {
    const tape = fixture.setA.tapes[0];
    if (!tape) throw new Error('no tape');
    const path = join(fixture.statusDir, `${tape.uuid}.log`);
    return { tape, path, bytes: await readFile(path) };
  };

  it('loads every member of the media set with its chunk archives and snapshots', async () => {
    const { tape, path, bytes } = await firstCatalog();
    const catalog = parseMediaCatalog(bytes, path, tape.uuid);
    expect(catalog.mediaSetUuid).toBe(fixture.setA.mediaSetUuid);
    expect(catalog.seqNr).toBe(0);
    expect(catalog.chunkArchives.length).toBeGreaterThan(0);
    expect(catalog.chunks.get('store1')?.size).toBeGreaterThan(0);
    // A chunk cut at end of media is not in the catalog of the tape it was cut on.
    const cut = fixture.setA.cutChunks[0] as string;
    const holders = [];
    for (const t of fixture.setA.tapes) {
      const c = parseMediaCatalog(
        await readFile(join(fixture.statusDir, `${t.uuid}.log`)),
        'x',
        t.uuid,
      );
      if (c.chunks.get('store1')?.has(cut) || c.chunks.get('store2')?.has(cut))
        holders.push(t.label);
    }
    expect(holders).toHaveLength(1);
  });

  it('refuses records out of order, chunks outside archives, unknown types and truncation', async () => {
    const { tape, path, bytes } = await firstCatalog();
    expect(
      codeOf(() => parseMediaCatalog(bytes, path, 'ffffffff-ffff-4fff-8fff-ffffffffffff')),
    ).toBe('BAD_CATALOG');
    // The first A record: file number 2 -> 1 (must be >= 2).
    const a = bytes.indexOf(0x41, 8 + 2 * 33);
    const early = Buffer.from(bytes);
    early.writeBigUInt64LE(1n, a + 1);
    const error = (() => {
      try {
        parseMediaCatalog(early, path, tape.uuid);
      } catch (e) {
        return e as TapeRestoreError;
      }
      throw new Error('did not throw');
    })();
    expect(error.code).toBe('BAD_CATALOG');
    expect(error.offset).toBe(a);
    expect(error.path).toBe(path);
    // A chunk record before any A.
    const stray = Buffer.concat([
      bytes.subarray(0, 8 + 66),
      Buffer.from([0x43]),
      Buffer.alloc(32),
      bytes.subarray(8 + 66),
    ]);
    expect(codeOf(() => parseMediaCatalog(stray, path, tape.uuid))).toBe('BAD_CATALOG');
    expect(
      codeOf(() => parseMediaCatalog(Buffer.concat([bytes, Buffer.from([0x5a])]), path, tape.uuid)),
    ).toBe('BAD_CATALOG');
    expect(
      codeOf(() => parseMediaCatalog(bytes.subarray(0, bytes.byteLength - 5), path, tape.uuid)),
    ).toBe('BAD_CATALOG');
    const magic = Buffer.from(bytes);
    flip(magic, 0, 1);
    expect(codeOf(() => parseMediaCatalog(magic, path, tape.uuid))).toBe('BAD_MAGIC');
    expect(parseMediaCatalog(Buffer.alloc(0), path, tape.uuid).chunkArchives).toEqual([]);
  });
});

describe('inventory and media sets', () => {
  it('assembles both media sets; a missing member is refused', async () => {
    const inventory = await loadInventory(fixture.statusDir);
    const uuids = inventory.map((e) => e.label.uuid);
    expect(uuids).toEqual([...uuids].sort());
    expect(
      assembleMediaSet(inventory, fixture.setA.mediaSetUuid).members.map((m) => m.label.label_text),
    ).toEqual(fixture.setA.tapes.map((t) => t.label));
    expect(assembleMediaSet(inventory, fixture.setB.mediaSetUuid).pool).toBe('monthly');
    const withoutSecond = inventory.filter(
      (e) => e.label.label_text !== fixture.setA.tapes[1]?.label,
    );
    const error = (() => {
      try {
        assembleMediaSet(withoutSecond, fixture.setA.mediaSetUuid);
      } catch (e) {
        return e as TapeRestoreError;
      }
      throw new Error('did not throw');
    })();
    expect(error.code).toBe('MEDIA_SET_INCOMPLETE');
    expect(error.message).toContain('missing member 1');
  });

  it('refuses an inventory that is not an array of labelled tapes', () => {
    expect(codeOf(() => parseInventory('{}', 'inv'))).toBe('BAD_INVENTORY');
    expect(codeOf(() => parseInventory('[{"id":{}}]', 'inv'))).toBe('BAD_INVENTORY');
    expect(codeOf(() => parseInventory('nope', 'inv'))).toBe('BAD_INVENTORY');
  });
});

const content = (magic: Uint8Array, json: unknown) => {
  const body = Buffer.from(JSON.stringify(json, null, 2));
  return Buffer.concat([
    MediaContentHeader.encode({
      magic: PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0,
      contentMagic: magic,
      uuid: new Uint8Array(16),
      ctime: 0n,
      size: body.byteLength,
      partNumber: 0,
      reserved: new Uint8Array(3),
    }),
    body,
  ]);
};

async function openOne(payload: Uint8Array) {
  const drive = await virtualTape(temp.file(`t${counter++}`), 'T1', [blockStream(payload)]);
  const next = await drive.readNextFile();
  if (next.kind !== 'file') throw new Error('no file');
  openReaders.push(next.reader);
  return { drive, reader: next.reader };
}

describe('chunk archives', () => {
  const entry = (blob: Buffer, digest = Buffer.alloc(32, 1)) =>
    Buffer.concat([
      ChunkArchiveEntryHeader.encode({
        magic: PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0,
        digest,
        size: BigInt(blob.byteLength),
      }),
      blob,
    ]);
  const header = content(PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1, { store: 's' });

  it('treats a last entry cut short as the end of the archive (§11.1)', async () => {
    const blob = encodeDataBlob(runnyBytes(10_000, 1));
    const whole = entry(blob);
    const { drive, reader } = await openOne(Buffer.concat([header, whole, whole.subarray(0, 100)]));
    expect((await readTapeContent(reader)).kind).toBe('chunk-archive');
    const end = { cut: false };
    const got = [];
    for await (const e of chunkArchiveEntries(reader, drive.stats, end)) got.push(e.digest);
    expect(got).toHaveLength(1);
    expect(end.cut).toBe(true);
    expect(drive.stats.chunkEntriesDecoded).toBe(1);
  });

  it('checks the CRC of every entry, wanted or not, and refuses a wrong entry magic', async () => {
    const blob = encodeDataBlob(runnyBytes(10_000, 1));
    const bad = Buffer.from(blob);
    flip(bad, bad.byteLength - 1, 1);
    const { drive, reader } = await openOne(Buffer.concat([header, entry(bad)]));
    await readTapeContent(reader);
    const error = await (async () => {
      for await (const _ of chunkArchiveEntries(reader, drive.stats)) {
        /* nothing wanted */
      }
    })().catch((e: unknown) => e as TapeRestoreError);
    expect(error?.code).toBe('BAD_CRC');
    expect(error?.tape).toBe('T1');
    expect(error?.block).toBe(0);
    const broken = entry(blob);
    flip(broken, 0, 1);
    const second = await openOne(Buffer.concat([header, broken]));
    await readTapeContent(second.reader);
    const magicError = await (async () => {
      for await (const _ of chunkArchiveEntries(second.reader, newTapeReadStats())) {
        /* nothing */
      }
    })().catch((e: unknown) => e as TapeRestoreError);
    expect(magicError?.code).toBe('BAD_MAGIC');
  });
});

describe('pxar', () => {
  const decodeAll = async (archive: Buffer) => {
    const { reader } = await openOne(
      Buffer.concat([
        content(PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1, {
          snapshot: 'vm/1/2021-01-01T00:00:00Z',
          store: 's',
        }),
        archive,
      ]),
    );
    await readTapeContent(reader);
    const files: Array<{ name: string; data: Buffer }> = [];
    await decodeFlatPxar(reader, async (file, chunks) => {
      const parts = [];
      for await (const part of chunks) parts.push(part);
      files.push({ name: file.name, data: Buffer.concat(parts) });
    });
    return files;
  };

  it('decodes the flat archive of regular files in tape order', async () => {
    const files = await decodeAll(
      encodeFlatPxar([
        { name: 'index.json.blob', data: Buffer.from('m') },
        { name: 'b.fidx', data: Buffer.alloc(300_000, 3) },
        { name: 'a.blob', data: Buffer.alloc(0) },
      ]),
    );
    expect(files.map((f) => [f.name, f.data.byteLength])).toEqual([
      ['index.json.blob', 1],
      ['b.fidx', 300_000],
      ['a.blob', 0],
    ]);
  });

  it.each([
    ['a sub-directory', [{ name: 'dir', data: Buffer.alloc(0), mode: S_IFDIR | 0o755 }]],
    [
      'a symlink',
      [{ name: 'link', data: Buffer.from('/etc/passwd'), mode: S_IFLNK_FOR_TEST | 0o777 }],
    ],
    ['a name with ..', [{ name: '..', data: Buffer.from('x') }]],
    ['a name with /', [{ name: 'a/../../b', data: Buffer.from('x') }]],
    [
      'a name twice',
      [
        { name: 'a', data: Buffer.from('x') },
        { name: 'a', data: Buffer.from('y') },
      ],
    ],
  ])('refuses %s', async (_what, files) => {
    const error = await decodeAll(encodeFlatPxar(files)).catch(
      (e: unknown) => e as TapeRestoreError,
    );
    expect((error as TapeRestoreError).code).toBe('BAD_PXAR');
    expect((error as TapeRestoreError).fileNumber).toBe(0);
  });

  it('refuses an archive cut inside a file', async () => {
    const archive = encodeFlatPxar([{ name: 'a', data: Buffer.alloc(1000, 1) }]);
    const error = await decodeAll(archive.subarray(0, 500)).catch(
      (e: unknown) => e as TapeRestoreError,
    );
    expect((error as TapeRestoreError).code).toBe('TRUNCATED');
  });
});
