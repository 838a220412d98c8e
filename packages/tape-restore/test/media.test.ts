import { join } from 'node:path';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  listMedia,
  listMediaCatalog,
  openTapeDrive,
  planRestore,
  restoreSnapshots,
  verifyMedia,
} from '../src/index.js';
import { fixtureSnapshotPath } from '../src/testing/index.js';
import {
  copyOf,
  emptyDatastore,
  STORE1_SNAPSHOTS,
  type TapeFixture,
  tapeFixture,
  treeFiles,
} from './support/fixtures.js';
import { findChunkArchiveEntries, poke } from './support/tape-inspect.js';

let fixture: TapeFixture;
let temp: TempDir;
beforeAll(async () => {
  fixture = await tapeFixture();
  temp = await makeTempDir('tape-media-');
});
afterAll(() => temp.remove());

const paths = STORE1_SNAPSHOTS.map(fixtureSnapshotPath);

describe('media list and catalog', () => {
  it('lists every tape of the inventory by media set and position', async () => {
    const drive = await openTapeDrive(fixture.driveDir);
    const list = await listMedia(fixture.statusDir, drive);
    expect(list).toHaveLength(fixture.setA.tapes.length + fixture.setB.tapes.length);
    const setA = list.filter((m) => m.mediaSetUuid === fixture.setA.mediaSetUuid);
    expect(setA.map((m) => [m.label, m.seqNr, m.pool])).toEqual(
      fixture.setA.tapes.map((t, i) => [t.label, i, 'weekly']),
    );
    expect(list.every((m) => m.online)).toBe(true);
  });

  it('lists what the catalog says is on a tape', async () => {
    const first = await listMediaCatalog(fixture.statusDir, fixture.setA.tapes[0]?.label as string);
    expect(first.files[0]).toMatchObject({ fileNumber: 2, kind: 'chunk-archive', store: 'store1' });
    const all = [];
    for (const tape of fixture.setA.tapes)
      all.push(...(await listMediaCatalog(fixture.statusDir, tape.label)).files);
    expect(
      all
        .filter((f) => f.kind === 'snapshot-archive')
        .map((f) => f.kind === 'snapshot-archive' && f.snapshot),
    ).toEqual([...paths, 'ct/900/2024-02-01T00:00:00Z']);
  });
});

describe('planRestore', () => {
  it('lists the tapes and files a restore will read, loads no tape and writes nothing', async () => {
    const target = await emptyDatastore(join(temp.path, 'plan-target'));
    const drive = await openTapeDrive(fixture.driveDir);
    const snapshots = [`store1:${paths[1]}`, `store1:${paths[4]}`];
    const plan = await planRestore({
      statusDir: fixture.statusDir,
      mediaSetUuid: fixture.setA.mediaSetUuid,
      storeMapping: 'target',
      datastores: { target },
      snapshots,
      drive,
    });
    expect(drive.stats.tapeFilesOpened).toBe(0);
    expect(await treeFiles(target)).toEqual(new Map());
    expect(plan.restore.map((r) => r.snapshot)).toEqual(snapshots);
    // vm/100 #2 brings 1 new chunk; host/web1 brings 2: certain reads. The rest is possible.
    expect(plan.totals.chunks).toBe(3);
    expect(plan.totals.possibleChunks).toBeGreaterThan(0);
    expect(plan.totals.bytes).toBeGreaterThan(0);
    // The real restore reads every certain file and no file the plan does not list.
    const lines: string[] = [];
    const result = await restoreSnapshots({
      drive,
      statusDir: fixture.statusDir,
      mediaSetUuid: fixture.setA.mediaSetUuid,
      storeMapping: 'target',
      datastores: { target },
      snapshots,
      log: (l) => lines.push(l),
    });
    expect(result.restored).toEqual(snapshots);
    const read = new Set<string>();
    let tape = '';
    for (const line of lines) {
      const loaded = /^loading media '(.+)'$/.exec(line)?.[1];
      if (loaded) tape = loaded;
      const file = /^File (\d+):/.exec(line)?.[1];
      if (file) read.add(`${tape}:${file}`);
    }
    const planned = new Set(
      plan.tapes.flatMap((t) => t.reads.map((r) => `${t.label}:${r.fileNumber}`)),
    );
    const certain = plan.tapes.flatMap((t) =>
      t.reads.filter((r) => r.need === 'certain').map((r) => `${t.label}:${r.fileNumber}`),
    );
    for (const file of read) expect(planned.has(file), file).toBe(true);
    for (const file of certain) expect(read.has(file), file).toBe(true);
  });
});

describe('verifyMedia', () => {
  it('finds every tape of the fixture sound', async () => {
    const drive = await openTapeDrive(fixture.driveDir);
    for (const tape of [...fixture.setA.tapes, ...fixture.setB.tapes]) {
      const result = await verifyMedia(drive, tape.label);
      expect(result.damage, tape.label).toEqual([]);
      expect(result.sound).toBe(true);
      expect(result.files.map((f) => f.fileNumber)).toEqual(tape.files.map((_, i) => i));
    }
  });

  it('reports a damaged chunk and a damaged block with file, block and offset, and goes on', async () => {
    const copy = await copyOf(fixture, temp.file('damaged'));
    const drive = await openTapeDrive(copy.driveDir);
    // The monthly set's one tape: file 2 is a chunk archive of 3 chunks, then a snapshot archive.
    const tape = fixture.setB.tapes[0];
    const label = tape?.label as string;
    const archive = await findChunkArchiveEntries(drive, label, 2);
    expect(archive.entries.length).toBeGreaterThan(1);
    await poke(archive.path, (archive.entries[1]?.blobStart ?? 0) + 100);
    const snapshotFile = tape?.files.findIndex((f) => f.startsWith('snapshot archive')) as number;
    const { readFile, writeFile } = await import('node:fs/promises');
    const path = join(copy.driveDir, `tapefile-${snapshotFile}-${label}.json`);
    const bytes = await readFile(path);
    bytes.writeUInt32LE(9, 12); // block 0's sequence number
    await writeFile(path, bytes);
    const result = await verifyMedia(drive, label);
    expect(result.sound).toBe(false);
    expect(result.damage.map((d) => [d.fileNumber, d.code])).toEqual([
      [2, 'BAD_CRC'],
      [snapshotFile, 'BAD_BLOCK'],
    ]);
    expect(result.damage[1]?.block).toBe(0);
    expect(result.files.length).toBe(tape?.files.length);
    expect(result.files.find((f) => f.fileNumber === 2)?.items).toBe(archive.entries.length - 1);
  });
});
