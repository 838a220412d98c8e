import { mkdirSync, writeFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DdDumpDrive,
  decodeBlob,
  openTapeDrive,
  type RestoreSnapshotsOptions,
  restoreSnapshots,
  TapeRestoreError,
} from '../src/index.js';
import { copyTapeAsDump, fixtureSnapshotPath } from '../src/testing/index.js';
import { expectSameSnapshot } from './support/compare.js';
import {
  chunkFiles,
  copyOf,
  emptyDatastore,
  STORE1_SNAPSHOTS,
  STORE2_SNAPSHOTS,
  type TapeFixture,
  tapeFixture,
  treeFiles,
} from './support/fixtures.js';

let fixture: TapeFixture;
let temp: TempDir;
let counter = 0;
beforeAll(async () => {
  fixture = await tapeFixture();
  temp = await makeTempDir('tape-restore-');
});
afterAll(() => temp.remove());

const paths = STORE1_SNAPSHOTS.map(fixtureSnapshotPath);
const [VM100_1, VM100_2, CT200, VM300, HOST] = paths as [string, string, string, string, string];
const CT900 = fixtureSnapshotPath(STORE2_SNAPSHOTS[0] as (typeof STORE2_SNAPSHOTS)[number]);

async function newTarget(): Promise<string> {
  return emptyDatastore(join(temp.path, `target-${counter++}`));
}

async function restore(
  options: Partial<RestoreSnapshotsOptions> & {
    snapshots: string[];
    datastores: Record<string, string>;
  },
) {
  const lines: string[] = [];
  const drive =
    options.drive ??
    (await openTapeDrive(
      options.statusDir ? join(options.statusDir, '..', 'drive') : fixture.driveDir,
    ));
  const result = await restoreSnapshots({
    drive,
    statusDir: fixture.statusDir,
    mediaSetUuid: fixture.setA.mediaSetUuid,
    storeMapping: 'target',
    log: (line) => lines.push(line),
    ...options,
  });
  return { result, lines, drive };
}

async function failure(promise: Promise<unknown>): Promise<TapeRestoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TapeRestoreError);
  return error as TapeRestoreError;
}

describe('restoreSnapshots', () => {
  it('restores every snapshot of two stores, equal to the originals (namespaces, fidx, didx, zstd, encrypted)', async () => {
    const t1 = await newTarget();
    const t2 = await newTarget();
    const { result, lines } = await restore({
      storeMapping: 'store1=t1,store2=t2',
      datastores: { t1, t2 },
      snapshots: [...paths.map((p) => `store1:${p}`), `store2:${CT900}`],
    });
    expect(result.restored).toHaveLength(6);
    expect(result.skipped).toEqual([]);
    for (const path of paths) await expectSameSnapshot(join(fixture.store1, path), join(t1, path));
    await expectSameSnapshot(join(fixture.store2, CT900), join(t2, CT900));
    // Every chunk the indexes need is there, byte for byte the source's.
    const source = await chunkFiles(fixture.store1);
    const restored = await chunkFiles(t1);
    expect([...restored.keys()].sort()).toEqual([...source.keys()].sort());
    for (const [digest, chunk] of restored)
      expect(chunk.bytes.equals(source.get(digest)?.bytes ?? Buffer.alloc(0))).toBe(true);
    expect(await readFile(join(t1, 'vm/100/owner'), 'utf8')).toBe('root@pam\n');
    expect((await readdir(t1)).sort()).toEqual(['.chunks', '.tmp', 'host', 'ns', 'vm']);
    expect(await readdir(join(t1, '.tmp'))).toEqual(['locks']);
    expect(lines).toContain("File 2: chunk archive for datastore 'store1'");
    expect(lines.some((l) => /^restored \d+ bytes \([\d.]+ MB\/s\)$/.test(l))).toBe(true);
    expect(result.tapesLoaded.length).toBeGreaterThanOrEqual(fixture.setA.tapes.length);
  });

  it('reads only the chunks the target lacks and leaves each chunk archive early', async () => {
    const target = await newTarget();
    const first = await restore({ datastores: { target }, snapshots: [`store1:${VM100_1}`] });
    expect(first.result.chunksRestored).toBe(3);
    const full = first.drive.stats;
    // The second snapshot shares two of its three chunks with the first.
    const { result, drive } = await restore({
      datastores: { target },
      snapshots: [`store1:${VM100_2}`],
    });
    expect(result.chunksAlreadyPresent).toBe(2);
    expect(result.chunksRestored).toBe(1);
    expect(result.bytesRestored).toBeLessThan(1.1 * 1024 * 1024);
    expect(drive.stats.chunkEntriesDecoded).toBeLessThan(full.chunkEntriesDecoded);
    // One chunk archive, one snapshot archive, and the labels of the tapes loaded.
    expect(drive.stats.tapeFilesOpened).toBe(2 + 2 * result.tapesLoaded.length);
    expect(drive.stats.bytesRead).toBeLessThan(full.bytesRead);
    await expectSameSnapshot(join(fixture.store1, VM100_2), join(target, VM100_2));
  });

  it('leaves a chunk archive as soon as it has given its wanted chunks', async () => {
    const { findChunkArchiveEntries } = await import('./support/tape-inspect.js');
    const label = fixture.setA.tapes[0]?.label as string;
    const archive = await findChunkArchiveEntries(await openTapeDrive(fixture.driveDir), label, 2);
    expect(archive.entries.length).toBeGreaterThan(1);
    const wanted = archive.entries[0]?.digest as string;
    // A target holding every chunk but the first entry of that archive.
    const target = await newTarget();
    for (const [digest, chunk] of await chunkFiles(fixture.store1)) {
      if (digest === wanted) continue;
      await mkdir(join(target, '.chunks', digest.slice(0, 4)), { recursive: true });
      await writeFile(join(target, '.chunks', digest.slice(0, 4), digest), chunk.bytes);
    }
    // The archive's first entry is a chunk of the first snapshot (the writer reverses index order).
    const { result, drive } = await restore({
      datastores: { target },
      snapshots: [`store1:${VM100_1}`],
    });
    expect(result.chunksRestored).toBe(1);
    expect(drive.stats.chunkEntriesDecoded).toBe(1);
    expect(drive.stats.tapeFilesOpened).toBe(2 + 2 * result.tapesLoaded.length);
    // Labels and the snapshot archive are one block each; of the chunk archive only a part was read.
    const archiveSize = (await stat(archive.path)).size;
    const labelsAndSnapshot = (2 * result.tapesLoaded.length + 1) * 262144;
    expect(drive.stats.bytesRead - labelsAndSnapshot).toBeLessThan(archiveSize);
  });

  it('leaves a snapshot already in the target, and its chunks, byte for byte untouched', async () => {
    const target = await newTarget();
    await cp(join(fixture.store1, 'vm/100'), join(target, 'vm/100'), { recursive: true });
    const digests = (await chunkFiles(fixture.store1)).keys();
    const some = [...digests].slice(0, 3);
    for (const digest of some) {
      await mkdir(join(target, '.chunks', digest.slice(0, 4)), { recursive: true });
      await cp(
        join(fixture.store1, '.chunks', digest.slice(0, 4), digest),
        join(target, '.chunks', digest.slice(0, 4), digest),
        { preserveTimestamps: true },
      );
    }
    const before = await treeFiles(target);
    const chunksBefore = await chunkFiles(target);
    const { result, lines } = await restore({
      datastores: { target },
      snapshots: [`store1:${VM100_1}`, `store1:${CT200}`],
    });
    expect(result.alreadyPresent).toEqual([`store1:${VM100_1}`]);
    expect(result.restored).toEqual([`store1:${CT200}`]);
    expect(lines.some((l) => l.startsWith(`found snapshot ${VM100_1}`))).toBe(true);
    const after = await treeFiles(target);
    for (const [path, bytes] of before) expect(after.get(path)?.equals(bytes), path).toBe(true);
    const chunksAfter = await chunkFiles(target);
    for (const [digest, chunk] of chunksBefore) {
      expect(chunksAfter.get(digest)?.bytes.equals(chunk.bytes)).toBe(true);
      expect(chunksAfter.get(digest)?.mtimeMs).toBe(chunk.mtimeMs);
    }
  });

  it('skips a group owned by someone else, and a snapshot not in the media set', async () => {
    const target = await newTarget();
    await mkdir(join(target, 'vm/100'), { recursive: true });
    await writeFile(join(target, 'vm/100/owner'), 'alice@pbs\n');
    const { result } = await restore({
      datastores: { target },
      snapshots: [`store1:${VM100_1}`, 'store1:vm/999/2024-01-01T00:00:00Z', `store1:${HOST}`],
    });
    expect(result.skipped.map((s) => s.snapshot)).toEqual([
      `store1:${VM100_1}`,
      'store1:vm/999/2024-01-01T00:00:00Z',
    ]);
    expect(result.skipped[0]?.reason).toContain("owner is 'alice@pbs'");
    expect(result.skipped[1]?.reason).toContain('did not find snapshot');
    expect(result.restored).toEqual([`store1:${HOST}`]);
    expect(await readdir(join(target, 'vm/100'))).toEqual(['owner']);
  });

  it('restores as the given owner and refuses nothing when the owner matches', async () => {
    const target = await newTarget();
    await mkdir(join(target, 'vm/100'), { recursive: true });
    await writeFile(join(target, 'vm/100/owner'), 'alice@pbs\n');
    const { result } = await restore({
      datastores: { target },
      owner: 'alice@pbs',
      snapshots: [`store1:${VM100_1}`],
    });
    expect(result.restored).toEqual([`store1:${VM100_1}`]);
  });

  it('says there is nothing to restore when every snapshot is skipped, and loads no tape', async () => {
    const target = await newTarget();
    const { result, lines, drive } = await restore({
      datastores: { target },
      snapshots: ['store1:vm/999/2024-01-01T00:00:00Z'],
    });
    expect(lines).toContain('nothing to restore, skipping remaining phases...');
    expect(result.skipped).toHaveLength(1);
    expect(drive.stats.tapeFilesOpened).toBe(0);
  });

  it('refuses a media set with a member missing from the inventory before writing anything', async () => {
    const copy = await copyOf(fixture, temp.file(`copy-${counter++}`));
    const inventoryPath = join(copy.statusDir, 'inventory.json');
    const inventory = JSON.parse(await readFile(inventoryPath, 'utf8'));
    await writeFile(
      inventoryPath,
      JSON.stringify(
        inventory.filter(
          (e: { id: { label: { label_text: string } } }) =>
            e.id.label.label_text !== fixture.setA.tapes[1]?.label,
        ),
      ),
    );
    const target = await newTarget();
    const drive = await openTapeDrive(copy.driveDir);
    const error = await failure(
      restore({
        drive,
        statusDir: copy.statusDir,
        datastores: { target },
        snapshots: [`store1:${VM100_1}`],
      }),
    );
    expect(error.code).toBe('MEDIA_SET_INCOMPLETE');
    expect(error.message).toContain('missing member 1');
    expect(await readdir(target)).toEqual(['.chunks']);
    expect(drive.stats.tapeFilesOpened).toBe(0);
  });

  it('refuses a media set whose member has no catalog', async () => {
    const copy = await copyOf(fixture, temp.file(`copy-${counter++}`));
    const { rm } = await import('node:fs/promises');
    await rm(join(copy.statusDir, `${fixture.setA.tapes[2]?.uuid}.log`));
    const target = await newTarget();
    const error = await failure(
      restore({
        drive: await openTapeDrive(copy.driveDir),
        statusDir: copy.statusDir,
        datastores: { target },
        snapshots: [`store1:${VM100_1}`],
      }),
    );
    expect(error.code).toBe('MEDIA_SET_INCOMPLETE');
    expect(await readdir(target)).toEqual(['.chunks']);
  });

  it('takes a chunk cut at end of media from the next tape, where it was written whole', async () => {
    const cut = fixture.setA.cutChunks;
    expect(cut.length).toBeGreaterThan(0);
    const target = await newTarget();
    const { result } = await restore({
      storeMapping: 'store1=target,store2=target',
      datastores: { target },
      snapshots: [...paths.map((p) => `store1:${p}`), `store2:${CT900}`],
    });
    expect(result.restored).toHaveLength(6);
    const chunks = await chunkFiles(target);
    for (const digest of cut) expect(chunks.has(digest)).toBe(true);
  });

  it('fails on a damaged chunk before the last wanted one, even if it is not wanted, and inserts nothing partial', async () => {
    // Corrupt the first entry of a chunk archive, then want only a later chunk of it.
    const copy = await copyOf(fixture, temp.file(`copy-${counter++}`));
    const drive = await openTapeDrive(copy.driveDir);
    const { findChunkArchiveEntries } = await import('./support/tape-inspect.js');
    const archive = await findChunkArchiveEntries(drive, fixture.setA.tapes[0]?.label as string, 2);
    expect(archive.entries.length).toBeGreaterThan(1);
    const [firstEntry, secondEntry] = archive.entries as [
      (typeof archive.entries)[number],
      (typeof archive.entries)[number],
    ];
    const { poke } = await import('./support/tape-inspect.js');
    await poke(archive.path, firstEntry.blobStart + 20);
    // A target that lacks only the second entry's chunk: find a snapshot that needs it.
    const target = await newTarget();
    const source = await chunkFiles(fixture.store1);
    for (const [digest, chunk] of source) {
      if (digest === secondEntry.digest) continue;
      await mkdir(join(target, '.chunks', digest.slice(0, 4)), { recursive: true });
      await writeFile(join(target, '.chunks', digest.slice(0, 4), digest), chunk.bytes);
    }
    const error = await failure(
      restore({
        drive: await openTapeDrive(copy.driveDir),
        statusDir: copy.statusDir,
        datastores: { target },
        snapshots: paths.map((p) => `store1:${p}`),
      }),
    );
    expect(error.code).toBe('BAD_CRC');
    expect(error.tape).toBe(fixture.setA.tapes[0]?.label);
    expect(error.fileNumber).toBe(2);
    expect((await chunkFiles(target)).has(secondEntry.digest)).toBe(false);
    expect((await chunkFiles(target)).has(firstEntry.digest)).toBe(true);
    // No snapshot directory, no temporary directory left behind.
    expect((await readdir(target)).filter((n) => n !== '.chunks' && n !== '.tmp')).toEqual([]);
    expect(await readdir(join(target, '.tmp'))).toEqual(['locks']);
  });

  it('never inserts a chunk whose SHA-256 is not its digest', async () => {
    const copy = await copyOf(fixture, temp.file(`copy-${counter++}`));
    const drive = await openTapeDrive(copy.driveDir);
    const { findChunkArchiveEntries, replaceBlobKeepingCrc } = await import(
      './support/tape-inspect.js'
    );
    const archive = await findChunkArchiveEntries(drive, fixture.setA.tapes[0]?.label as string, 2);
    const entry = archive.entries[0] as (typeof archive.entries)[number];
    await replaceBlobKeepingCrc(archive.path, entry);
    const target = await newTarget();
    const error = await failure(
      restore({
        drive: await openTapeDrive(copy.driveDir),
        statusDir: copy.statusDir,
        datastores: { target },
        snapshots: paths.map((p) => `store1:${p}`),
      }),
    );
    expect(error.code).toBe('BAD_DIGEST');
    expect((await chunkFiles(target)).has(entry.digest)).toBe(false);
    expect((await readdir(target)).filter((n) => n !== '.chunks' && n !== '.tmp')).toEqual([]);
  });

  it('creates missing .chunks prefix directories and only touches a chunk of the same size', async () => {
    const target = await newTarget();
    expect(await readdir(join(target, '.chunks'))).toEqual([]);
    await restore({ datastores: { target }, snapshots: [`store1:${HOST}`] });
    expect((await readdir(join(target, '.chunks'))).length).toBe(2);
  });

  it('checks owner and existence again in phase 3 (a group or snapshot created meanwhile)', async () => {
    const target = await newTarget();
    const { result } = await restore({
      datastores: { target },
      snapshots: [`store1:${VM100_1}`, `store1:${CT200}`],
      log: (line) => {
        if (line.startsWith('Phase 3')) {
          // Another client creates the vm/100 group as alice and ct/200's snapshot directory.
          mkdirSync(join(target, 'vm/100'), { recursive: true });
          writeFileSync(join(target, 'vm/100/owner'), 'alice@pbs\n');
          mkdirSync(join(target, CT200), { recursive: true });
          writeFileSync(join(target, 'ns/prod/ct/200/owner'), 'root@pam\n');
        }
      },
    });
    expect(result.restored).toEqual([]);
    expect(result.skipped.map((s) => s.snapshot).sort()).toEqual(
      [`store1:${CT200}`, `store1:${VM100_1}`].sort(),
    );
    expect(await readdir(join(target, CT200))).toEqual([]);
    expect(await readdir(join(target, '.tmp'))).toEqual(['locks']);
  });

  it('reads dd dumps of the tapes the same way', async () => {
    const dumps = temp.file(`dumps-${counter++}`);
    for (const tape of fixture.setA.tapes) {
      const count = JSON.parse(
        await readFile(join(fixture.driveDir, `tape-${tape.label}.json`), 'utf8'),
      ).files;
      await copyTapeAsDump(fixture.driveDir, tape.label, count, dumps);
    }
    const drive = await openTapeDrive(dumps);
    expect(drive).toBeInstanceOf(DdDumpDrive);
    const target = await newTarget();
    const { result } = await restore({
      drive,
      datastores: { target },
      snapshots: [`store1:${VM300}`],
    });
    expect(result.restored).toEqual([`store1:${VM300}`]);
    await expectSameSnapshot(join(fixture.store1, VM300), join(target, VM300));
  });

  it('names the tape that is not in the drive', async () => {
    const copy = await copyOf(fixture, temp.file(`copy-${counter++}`));
    const { rm } = await import('node:fs/promises');
    const label = fixture.setA.tapes[0]?.label as string;
    await rm(join(copy.driveDir, `tape-${label}.json`));
    const target = await newTarget();
    const error = await failure(
      restore({
        drive: await openTapeDrive(copy.driveDir),
        statusDir: copy.statusDir,
        datastores: { target },
        snapshots: paths.map((p) => `store1:${p}`),
      }),
    );
    expect(error.code).toBe('MEDIA_NOT_FOUND');
    expect(error.tape).toBe(label);
    expect(await readdir(join(target, '.tmp'))).toEqual(['locks']);
  });

  it('keeps two concurrent restores into one datastore consistent', async () => {
    const target = await newTarget();
    const [a, b] = await Promise.all([
      restore({ datastores: { target }, snapshots: [`store1:${VM100_1}`, `store1:${CT200}`] }),
      restore({ datastores: { target }, snapshots: [`store1:${VM100_1}`, `store1:${HOST}`] }),
    ]);
    const restored = [...a.result.restored, ...b.result.restored].sort();
    expect(restored.filter((s) => s === `store1:${VM100_1}`)).toHaveLength(1);
    for (const path of [VM100_1, CT200, HOST])
      await expectSameSnapshot(join(fixture.store1, path), join(target, path));
  });

  it('stops on abort in phase 2, leaving no snapshot and no temporary directory', async () => {
    const target = await newTarget();
    const controller = new AbortController();
    const error = await restore({
      datastores: { target },
      snapshots: paths.map((p) => `store1:${p}`),
      signal: controller.signal,
      log: (line) => {
        if (line.startsWith('Phase 2')) controller.abort(new Error('interrupted by SIGINT'));
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as { code?: string }).code).toBe('ABORTED');
    expect((await readdir(target)).filter((n) => n !== '.chunks' && n !== '.tmp')).toEqual([]);
    expect(await readdir(join(target, '.tmp'))).toEqual(['locks']);
  });

  it('writes restored snapshot files readable by their owner only', async () => {
    const target = await newTarget();
    await restore({ datastores: { target }, snapshots: [`store1:${HOST}`] });
    for (const name of await readdir(join(target, HOST))) {
      expect((await stat(join(target, HOST, name))).mode & 0o777, name).toBe(0o600);
    }
  });

  it('re-encodes the manifest without verify_state', async () => {
    const target = await newTarget();
    await restore({ datastores: { target }, snapshots: [`store1:${VM100_1}`] });
    const manifest = JSON.parse(
      (await decodeBlob(await readFile(join(target, VM100_1, 'index.json.blob')), {})).toString(
        'utf8',
      ),
    );
    expect(manifest.unprotected).toEqual({ notes: 'first' });
    const original = JSON.parse(
      (
        await decodeBlob(await readFile(join(fixture.store1, VM100_1, 'index.json.blob')), {})
      ).toString('utf8'),
    );
    expect(original.unprotected.verify_state).toBeDefined();
    expect((await stat(join(target, VM100_1, 'index.json.blob'))).isFile()).toBe(true);
  });
});
