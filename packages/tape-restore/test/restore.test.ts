import { join } from 'node:path';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTapeDrive, restoreSnapshots } from '../src/index.js';
import { emptyDatastore, type TapeFixture, tapeFixture } from './support/fixtures.js';

let fixture: TapeFixture;
let temp: TempDir;
beforeAll(async () => {
  fixture = await tapeFixture();
  temp = await makeTempDir('tape-restore-');
});
afterAll(() => temp.remove());

describe('restoreSnapshots', () => {
  it('restores one snapshot', async () => {
    const target = await emptyDatastore(join(temp.path, 'target1'));
    const drive = await openTapeDrive(fixture.driveDir);
    const lines: string[] = [];
    const result = await restoreSnapshots({
      drive,
      statusDir: fixture.statusDir,
      mediaSetUuid: fixture.setA.mediaSetUuid,
      storeMapping: 'target',
      datastores: { target },
      snapshots: ['store1:vm/100/2024-01-02T00:00:00Z'],
      log: (line) => lines.push(line),
    });
    expect(result.restored).toEqual(['store1:vm/100/2024-01-02T00:00:00Z']);
  });
});
