import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { MemoryDevice } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyBackup,
  BackupReader,
  inspectBackup,
  mergeBackups,
  restoreBackup,
} from '../src/index.js';
import { sheepdogFixtures } from './support/sheepdog-fixtures.js';
import { dogStream } from './support/streams.js';

describe('mergeBackups', () => {
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-merge-');
  });
  afterAll(() => temp.remove());

  it('merges the real snap0→snap1 and snap1→snap2 streams into one snap0→snap2 stream', async () => {
    const fixtures = await sheepdogFixtures();
    const merged = temp.file('snap0-to-snap2.backup');
    const result = await mergeBackups(
      [fixtures.backup('alpha-snap0-to-snap1'), fixtures.backup('alpha-snap1-to-snap2')],
      { output: merged },
    );
    expect(result).toMatchObject({ inputs: 2, recordsIn: 10 });
    const output = temp.file('snap2.raw');
    await restoreBackup(merged, { type: 'raw', base: fixtures.raw('snap0'), output });
    const digest = createHash('sha256')
      .update(await readFile(output))
      .digest('hex');
    expect(digest).toBe(fixtures.sha256Uncompressed('alpha-snap2.raw'));
    // Overlapping records of one object became one: idx 0 is written whole by snap0→snap1.
    const inspection = await inspectBackup(merged);
    expect(inspection.changedObjects).toEqual([
      [0, 1],
      [3, 3],
      [5, 5],
      [9, 10],
      [15, 15],
    ]);
    expect(inspection.records).toBe(result.records);
  });

  it('later streams win, touching ranges merge, and the same stream twice is itself', async () => {
    const a = temp.file('a.backup');
    const b = temp.file('b.backup');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      a,
      dogStream([
        [0, 0, Buffer.alloc(1024, 1)],
        [2, 512, Buffer.alloc(512, 1)],
      ]),
    );
    await writeFile(
      b,
      dogStream([
        [0, 512, Buffer.alloc(1024, 2)],
        [2, 1024, Buffer.alloc(512, 2)],
      ]),
    );
    const merged = temp.file('ab.backup');
    await mergeBackups([a, b], { output: merged, objectSize: 4096 });
    const reader = await BackupReader.open(merged, { objectSize: 4096 });
    const records: string[] = [];
    for await (const record of reader.records()) {
      const data = await reader.readData(record);
      records.push(
        `${record.idx}:${record.offset}+${record.length}:${data[0]}${data[600]}${data.at(-1)}`,
      );
    }
    await reader.close();
    expect(records).toEqual(['0:0+1536:122', '2:512+1024:122']);
    const again = temp.file('aa.backup');
    await mergeBackups([a, a], { output: again, objectSize: 4096 });
    expect((await readFile(again)).equals(await readFile(a))).toBe(true);
  });

  it('validates every input before creating the output', async () => {
    const good = temp.file('good.backup');
    const bad = temp.file('bad.backup');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(good, dogStream([[0, 0, 512]]));
    await writeFile(bad, dogStream([[0, 0, 512]]).subarray(0, 100));
    const output = temp.file('never.backup');
    await expect(mergeBackups([good, bad], { output })).rejects.toMatchObject({
      code: 'TRUNCATED',
      path: bad,
    });
    await expect(readFile(output)).rejects.toMatchObject({ code: 'ENOENT' });
    // applyBackup of the good one still works on a device.
    const device = new MemoryDevice(4 << 20);
    const reader = await BackupReader.open(good);
    expect((await applyBackup(reader, device)).records).toBe(1);
    await reader.close();
  });
});
