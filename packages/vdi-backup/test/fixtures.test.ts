import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FileDevice } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupReader, createBackup, inspectBackup, restoreBackup } from '../src/index.js';
import {
  BACKUPS,
  EXPECTED_RECORDS,
  OBJECT_SIZE,
  type SheepdogFixtures,
  sheepdogFixtures,
} from './support/sheepdog-fixtures.js';

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

describe('real dog 1.0.1 streams', () => {
  let fixtures: SheepdogFixtures;
  let temp: TempDir;
  beforeAll(async () => {
    fixtures = await sheepdogFixtures();
    temp = await makeTempDir('vdi-fixtures-');
  });
  afterAll(() => temp.remove());

  it.each(BACKUPS.map((backup) => [backup.name, backup] as const))(
    '%s decodes to the records dog wrote',
    async (name) => {
      const reader = await BackupReader.open(fixtures.backup(name));
      const records: Array<[number, number, number]> = [];
      for await (const record of reader.records()) {
        records.push([record.idx, record.offset, record.length]);
      }
      await reader.close();
      expect(reader.layout).toBe('dog');
      expect(records).toEqual(EXPECTED_RECORDS[name]);
      const inspection = await inspectBackup(fixtures.backup(name));
      expect(inspection.records).toBe(records.length);
      expect(inspection.dataBytes).toBe(records.reduce((sum, [, , length]) => sum + length, 0));
    },
  );

  it.each(BACKUPS.map((backup) => [backup.name, backup] as const))(
    '%s applied to its "from" image gives its "to" image exactly',
    async (name, { from, to }) => {
      const output = temp.file(`${name}.restored.raw`);
      const result = await restoreBackup(fixtures.backup(name), {
        type: 'raw',
        base: fixtures.raw(from),
        output,
      });
      expect(result.records).toBe(EXPECTED_RECORDS[name]?.length);
      expect(await sha256(output)).toBe(fixtures.sha256Uncompressed(`alpha-${to}.raw`));
    },
  );

  // Compared on the calling thread, and on worker threads (FileScanner) as the CLI does
  // for files of 64 MiB and more.
  it.each(
    BACKUPS.flatMap((backup) => [
      [backup.name, 0, backup] as const,
      [backup.name, 2, backup] as const,
    ]),
  )(
    'createBackup of the two raw images reproduces %s byte for byte (%i compare threads)',
    async (name, compareThreads, { from, to }) => {
      const fromDevice = await FileDevice.open(fixtures.raw(from));
      const toDevice = await FileDevice.open(fixtures.raw(to));
      const output = temp.file(`${name}.${compareThreads}.created.backup`);
      try {
        const result = await createBackup(fromDevice, toDevice, {
          output,
          objectSize: OBJECT_SIZE,
          compareThreads,
        });
        expect(result.records).toBe(EXPECTED_RECORDS[name]?.length);
        expect(result.objects).toBe(16);
      } finally {
        await fromDevice.close();
        await toDevice.close();
      }
      expect((await readFile(output)).equals(await readFile(fixtures.backup(name)))).toBe(true);
    },
  );
});
