import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedFixture } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { openKvStore } from '../src/index.js';
import { PACKAGE_ROOT } from './support/ceph-fixture.js';
import {
  buildLevelDb,
  type LevelDbOp,
  type LevelDbSession,
  levelDbListing,
} from './support/peer-stores.js';
import { readAll } from './support/read-all.js';
import { keyOf, Model, makeValue, random } from './support/workload.js';

interface Recipe {
  name: string;
  options: LevelDbSession['options'];
  keys: number;
  seed: number;
  /** At least this many live tables (LevelDB's files are at least 1 MiB: more data, more tables). */
  minimumTables: number;
}

/**
 * Six sessions (each open makes LevelDB flush the previous log into a table): a bulk
 * load, overwrites and deletions with a compaction, a batch of mixed writes, two small
 * sessions (overlapping level-0 tables), then a
 * session whose writes stay only in the log — including a 100 KiB value (a log record
 * fragmented over several 32 KiB blocks) and keys holding 0x00 and 0xff bytes.
 */
function sessions(recipe: Recipe, model: Model): LevelDbSession[] {
  const next = random(recipe.seed);
  const pick = () => Math.floor(next() * recipe.keys);
  const put = (
    index: number | string,
    label: string,
    length = 40 + Math.floor(next() * 300),
  ): LevelDbOp => {
    const key = typeof index === 'number' ? Buffer.from(keyOf(index)).toString('hex') : index;
    const value = makeValue(label, length).toString('hex');
    model.put(key, value);
    return ['put', key, value];
  };
  const del = (index: number | string): LevelDbOp => {
    const key = typeof index === 'number' ? Buffer.from(keyOf(index)).toString('hex') : index;
    model.delete(key);
    return ['delete', key];
  };
  const order = Array.from({ length: recipe.keys }, (_, i) => i).sort(() => next() - 0.5);
  const first: LevelDbOp[] = order.map((i) => put(i, `a${i}`));
  const second: LevelDbOp[] = [];
  for (let i = 0; i < recipe.keys / 4; i++) second.push(put(pick(), `b${i}`));
  for (let i = 0; i < recipe.keys / 6; i++) second.push(del(pick()));
  second.push([
    'compact',
    Buffer.from(keyOf(0)).toString('hex'),
    Buffer.from(keyOf(recipe.keys / 2)).toString('hex'),
  ]);
  const batch: Array<['put', string, string] | ['delete', string]> = [];
  for (let i = 0; i < 200; i++) {
    const op = next() < 0.7 ? put(pick(), `c${i}`) : del(pick());
    batch.push(op as ['put', string, string] | ['delete', string]);
  }
  const small = (label: string): LevelDbOp[] => [
    ...Array.from({ length: 30 }, (_, i) => put(pick(), `${label}${i}`)),
    ...Array.from({ length: 10 }, () => del(pick())),
  ];
  // The model must see the sessions in the order the database does.
  const sessionE = small('e');
  const sessionF = small('f');
  const last: LevelDbOp[] = [];
  for (let i = 0; i < 60; i++) last.push(put(pick(), `d${i}`));
  for (let i = 0; i < 40; i++) last.push(del(pick()));
  last.push(put(recipe.keys + 1, 'big', 100_000));
  last.push(put('00ff00', 'binary-key'));
  last.push(put('ffff', 'all-ones'));
  last.push(put('', 'empty-key'));
  last.push(put(recipe.keys + 2, 'empty-value', 0));
  return [
    { options: recipe.options, ops: first },
    { options: recipe.options, ops: second },
    { options: recipe.options, ops: [['batch', batch]] },
    // Small sessions: each leaves one more overlapping level-0 table.
    { options: recipe.options, ops: sessionE },
    { options: recipe.options, ops: sessionF },
    { options: recipe.options, ops: last },
  ];
}

const RECIPES: Recipe[] = [
  {
    name: 'snappy',
    options: {
      write_buffer_size: 64 << 10,
      block_size: 1024,
      compression: 'snappy',
      max_file_size: 64 << 10,
    },
    keys: 3000,
    seed: 1,
    minimumTables: 2,
  },
  {
    name: 'uncompressed',
    options: {
      write_buffer_size: 64 << 10,
      block_size: 256,
      block_restart_interval: 3,
      compression: null,
    },
    keys: 12000,
    seed: 2,
    minimumTables: 4,
  },
  {
    name: 'restart-every-key',
    options: {
      write_buffer_size: 64 << 10,
      block_size: 4096,
      block_restart_interval: 1,
      compression: 'snappy',
    },
    keys: 1500,
    seed: 3,
    minimumTables: 2,
  },
];

async function leveldbFixture(recipe: Recipe): Promise<{
  directory: string;
  expected: Array<[string, string]>;
  model: Array<[string, string]>;
}> {
  const root = await cachedFixture(
    PACKAGE_ROOT,
    `leveldb-${recipe.name}`,
    `${JSON.stringify(recipe)} v2`,
    async (scratch) => {
      const model = new Model();
      const db = join(scratch, 'db');
      await buildLevelDb(db, sessions(recipe, model));
      await writeFile(join(scratch, 'plyvel.json'), JSON.stringify(await levelDbListing(db)));
      await writeFile(join(scratch, 'model.json'), JSON.stringify(model.listing()));
    },
  );
  return {
    directory: join(root, 'db'),
    expected: JSON.parse(await readFile(join(root, 'plyvel.json'), 'utf8')),
    model: JSON.parse(await readFile(join(root, 'model.json'), 'utf8')),
  };
}

describe('LevelDB databases made by plyvel', () => {
  it.each(RECIPES.map((recipe) => [recipe.name, recipe] as const))(
    '%s: the same entries as plyvel',
    async (_name, recipe) => {
      const { directory, expected, model } = await leveldbFixture(recipe);
      expect(expected).toEqual(model);
      const store = await openKvStore(directory);
      try {
        expect(store.kind).toBe('leveldb');
        // The last session's writes are only in the log; earlier ones in tables on several levels.
        expect(store.files.logs.length).toBeGreaterThan(0);
        expect(new Set(store.files.tables.map((table) => table.level)).size).toBeGreaterThan(1);
        expect(store.files.tables.length).toBeGreaterThanOrEqual(recipe.minimumTables);
        expect(await readAll(store)).toEqual(expected);
        expect(store.warnings).toEqual([]);
        // Point lookups and ranges agree with the listing.
        const next = random(recipe.seed + 100);
        const live = new Map(expected);
        for (let i = 0; i < 200; i++) {
          const key = Buffer.from(keyOf(Math.floor(next() * (recipe.keys + 3))));
          expect((await store.get(key))?.toString('hex')).toBe(live.get(key.toString('hex')));
        }
        const start = Buffer.from(keyOf(500));
        const end = Buffer.from(keyOf(900));
        expect(await readAll(store, { start, end })).toEqual(
          expected.filter(
            ([key]) =>
              Buffer.compare(Buffer.from(key, 'hex'), start) >= 0 &&
              Buffer.compare(Buffer.from(key, 'hex'), end) < 0,
          ),
        );
        expect(await readAll(store, { prefix: Buffer.from('key-0012') })).toEqual(
          expected.filter(([key]) =>
            Buffer.from(key, 'hex').toString('latin1').startsWith('key-0012'),
          ),
        );
        expect(await readAll(store, { prefix: Buffer.from([0xff]) })).toEqual(
          expected.filter(([key]) => key.startsWith('ff')),
        );
      } finally {
        await store.close();
      }
    },
  );
});
