import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTapeDrive, restoreMediaSet } from '../src/index.js';
import { fixtureSnapshotPath } from '../src/testing/index.js';
import { expectSameSnapshot } from './support/compare.js';
import {
  chunkFiles,
  emptyDatastore,
  STORE1_SNAPSHOTS,
  STORE2_SNAPSHOTS,
  type TapeFixture,
  tapeFixture,
} from './support/fixtures.js';

let fixture: TapeFixture;
let temp: TempDir;
beforeAll(async () => {
  fixture = await tapeFixture();
  temp = await makeTempDir('tape-full-');
});
afterAll(() => temp.remove());

describe('restoreMediaSet (full restore)', () => {
  it('restores every snapshot and chunk of every tape and rebuilds the catalogs byte for byte', async () => {
    expect(fixture.setA.incompleteSnapshots.length).toBeGreaterThan(0);
    const t1 = await emptyDatastore(join(temp.path, 't1'));
    const t2 = await emptyDatastore(join(temp.path, 't2'));
    const catalogDir = join(temp.path, 'catalogs');
    await mkdir(catalogDir);
    const lines: string[] = [];
    const result = await restoreMediaSet({
      drive: await openTapeDrive(fixture.driveDir),
      statusDir: fixture.statusDir,
      mediaSetUuid: fixture.setA.mediaSetUuid,
      storeMapping: 'store1=t1,store2=t2',
      datastores: { t1, t2 },
      catalogDir,
      log: (line) => lines.push(line),
    });
    expect(result.tapes).toEqual(fixture.setA.tapes.map((t) => t.label));
    expect(result.snapshotsFailed).toEqual([]);
    expect(result.incompleteSnapshots).toEqual(fixture.setA.incompleteSnapshots);
    expect(lines).toContain(`skip incomplete snapshot ${fixture.setA.incompleteSnapshots[0]}`);
    for (const snapshot of STORE1_SNAPSHOTS) {
      const path = fixtureSnapshotPath(snapshot);
      await expectSameSnapshot(join(fixture.store1, path), join(t1, path));
    }
    for (const snapshot of STORE2_SNAPSHOTS) {
      const path = fixtureSnapshotPath(snapshot);
      await expectSameSnapshot(join(fixture.store2, path), join(t2, path));
    }
    expect([...(await chunkFiles(t1)).keys()].sort()).toEqual(
      [...(await chunkFiles(fixture.store1)).keys()].sort(),
    );
    for (const tape of fixture.setA.tapes) {
      const rebuilt = await readFile(join(catalogDir, `${tape.uuid}.log`));
      expect(
        rebuilt.equals(await readFile(join(fixture.statusDir, `${tape.uuid}.log`))),
        tape.label,
      ).toBe(true);
    }
    expect((await readdir(catalogDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('skips the archives of unmapped stores and snapshots already present', async () => {
    const t1 = await emptyDatastore(join(temp.path, 'only1'));
    const catalogDir = join(temp.path, 'catalogs2');
    await mkdir(catalogDir);
    const first = await restoreMediaSet({
      drive: await openTapeDrive(fixture.driveDir),
      statusDir: fixture.statusDir,
      mediaSetUuid: fixture.setA.mediaSetUuid,
      storeMapping: 'store1=t1',
      datastores: { t1 },
      catalogDir,
    });
    expect(first.snapshotsSkipped).toEqual([
      `store2:${fixtureSnapshotPath(STORE2_SNAPSHOTS[0] as (typeof STORE2_SNAPSHOTS)[number])}`,
    ]);
    const again = await restoreMediaSet({
      drive: await openTapeDrive(fixture.driveDir),
      statusDir: fixture.statusDir,
      mediaSetUuid: fixture.setA.mediaSetUuid,
      storeMapping: 'store1=t1',
      datastores: { t1 },
      catalogDir,
    });
    expect(again.snapshotsRestored).toEqual([]);
    expect(again.chunksRestored).toBe(0);
    expect(again.snapshotsSkipped).toHaveLength(STORE1_SNAPSHOTS.length + 1);
  });
});
