import { join } from 'node:path';
import { cachedFixture } from '@x/test-utils';
import { PACKAGE_ROOT } from './ceph-fixture.js';
import { buildLevelDb, hex, ldb } from './peer-stores.js';

/** A small LevelDB: one session flushed to a table, a second left in the log. */
export async function baseLevelDb(compression: 'snappy' | null): Promise<string> {
  const name = compression ?? 'plain';
  const root = await cachedFixture(
    PACKAGE_ROOT,
    `corruption-leveldb-${name}`,
    `v1 ${name}`,
    async (scratch) => {
      const first = Array.from(
        { length: 500 },
        (_, i) =>
          ['put', hex(`key-${String(i).padStart(4, '0')}`), hex(`value ${i} `.repeat(8))] as [
            'put',
            string,
            string,
          ],
      );
      const second = Array.from(
        { length: 50 },
        (_, i) =>
          ['put', hex(`log-${String(i).padStart(4, '0')}`), hex(`logged ${i}`)] as [
            'put',
            string,
            string,
          ],
      );
      await buildLevelDb(join(scratch, 'db'), [
        { options: { compression, block_size: 1024 }, ops: first },
        {
          options: { compression, block_size: 1024 },
          ops: [...second, ['delete', hex('key-0003')]],
        },
      ]);
    },
  );
  return join(root, 'db');
}

export async function baseRocksDb(): Promise<string> {
  const root = await cachedFixture(PACKAGE_ROOT, 'corruption-rocksdb', 'v1', async (scratch) => {
    const db = join(scratch, 'db');
    const pairs = Array.from({ length: 300 }, (_, i) => [
      `key-${String(i).padStart(4, '0')}`,
      `value ${i} `.repeat(8),
    ]).flat();
    await ldb(db, ['--create_if_missing', 'batchput', ...pairs]);
    await ldb(db, ['batchput', 'log-1', 'one', 'log-2', 'two']);
  });
  return join(root, 'db');
}
