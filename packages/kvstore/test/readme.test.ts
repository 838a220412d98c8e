import { resolve } from 'node:path';
import { describeReadmeExamples } from '@x/test-utils';
import { buildLevelDb, hex, ldb } from './support/peer-stores.js';

/** The two databases the README's examples read, made by the real libraries. */
async function makeExampleStores(): Promise<void> {
  const directory = process.cwd();
  await buildLevelDb(resolve(directory, 'fruit-leveldb'), [
    {
      ops: [
        ['put', hex('fruit/apple'), hex('red')],
        ['put', hex('fruit/banana'), hex('green')],
        ['put', hex('fruit/cherry'), hex('dark red')],
      ],
    },
    {
      ops: [
        ['put', hex('fruit/banana'), hex('yellow')],
        ['delete', hex('fruit/cherry')],
        ['put', hex('veg/leek'), hex('green')],
      ],
    },
  ]);
  const rocks = `${resolve(directory, 'fruit-rocksdb')}`;
  await ldb(rocks, [
    '--create_if_missing',
    'batchput',
    'fruit/apple',
    'red',
    'fruit/banana',
    'green',
    'fruit/cherry',
    'dark red',
  ]);
  await ldb(rocks, ['batchput', 'fruit/banana', 'yellow', 'veg/leek', 'green']);
  await ldb(rocks, ['delete', 'fruit/cherry']);
}

describeReadmeExamples({
  packageRoot: resolve(import.meta.dirname, '..'),
  prepare: makeExampleStores,
  minimum: 4,
});
