import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedFixture } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { openKvStore } from '../src/index.js';
import { PACKAGE_ROOT } from './support/ceph-fixture.js';
import { ldb, rocksDbListing } from './support/peer-stores.js';
import { readAll } from './support/read-all.js';
import { keyOf, Model, makeValue, random } from './support/workload.js';

interface Recipe {
  name: string;
  /** ldb flags on every invocation (compression, buffer and file sizes). */
  flags: string[];
  /** Replacements in the OPTIONS file after the database is created (block-based table options). */
  tableOptions: Record<string, string>;
  keys: number;
  seed: number;
  /** End with a range deletion that stays in the log (else with writes that stay in the log). */
  endWithRangeDeletion: boolean;
  /** At least this many live tables (compactions may merge everything into one). */
  minimumTables?: number;
}

const SMALL = ['--write_buffer_size=65536', '--file_size=65536'];

const RECIPES: Recipe[] = [
  {
    name: 'defaults-snappy-xxh3',
    flags: [...SMALL, '--compression_type=snappy'],
    tableOptions: {},
    keys: 3000,
    seed: 11,
    endWithRangeDeletion: false,
  },
  {
    name: 'uncompressed-crc32c-v2',
    flags: [...SMALL, '--compression_type=no'],
    tableOptions: { checksum: 'kCRC32c', format_version: '2', block_restart_interval: '3' },
    keys: 2000,
    seed: 12,
    endWithRangeDeletion: true,
  },
  {
    name: 'partitioned-xxhash-v4',
    flags: [...SMALL, '--compression_type=snappy'],
    tableOptions: {
      checksum: 'kxxHash',
      format_version: '4',
      index_type: 'kTwoLevelIndexSearch',
      metadata_block_size: '128',
      block_size: '512',
    },
    keys: 2000,
    seed: 13,
    endWithRangeDeletion: false,
    // ldb's background compactions leave 3 or 4 tables here, depending on timing.
    minimumTables: 2,
  },
  {
    name: 'hash-index-first-key-xxhash64-v3',
    flags: [...SMALL, '--compression_type=no'],
    tableOptions: {
      checksum: 'kxxHash64',
      format_version: '3',
      data_block_index_type: 'kDataBlockBinaryAndHash',
      index_type: 'kBinarySearchWithFirstKey',
      block_size: '1024',
    },
    keys: 2000,
    seed: 14,
    endWithRangeDeletion: true,
  },
  {
    name: 'zlib-legacy-footer-v0',
    flags: [...SMALL, '--compression_type=zlib'],
    tableOptions: { format_version: '0', checksum: 'kCRC32c' },
    keys: 1500,
    seed: 15,
    endWithRangeDeletion: false,
  },
  {
    name: 'no-checksum-v5',
    flags: [...SMALL, '--compression_type=snappy'],
    tableOptions: { checksum: 'kNoChecksum', format_version: '5', block_restart_interval: '1' },
    keys: 1500,
    seed: 16,
    endWithRangeDeletion: true,
    minimumTables: 1,
  },
];

const hexKey = (index: number | string) =>
  typeof index === 'number' ? Buffer.from(keyOf(index)).toString('hex') : index;

async function buildRocksDb(db: string, recipe: Recipe, model: Model): Promise<void> {
  const next = random(recipe.seed);
  const pick = () => Math.floor(next() * recipe.keys);
  const run = (args: string[], input?: string) =>
    input === undefined
      ? ldb(db, ['--hex', ...recipe.flags, ...args])
      : ldbQuery(db, recipe, input);
  const put = (
    lines: string[],
    index: number | string,
    label: string,
    length = 40 + Math.floor(next() * 300),
  ) => {
    const key = hexKey(index);
    const value = makeValue(label, length).toString('hex');
    model.put(key, value);
    lines.push(`put 0x${key} 0x${value}`);
  };
  const del = (lines: string[], index: number | string) => {
    const key = hexKey(index);
    model.delete(key);
    lines.push(`delete 0x${key}`);
  };
  const deleteRange = async (from: number, to: number) => {
    model.deleteRange(hexKey(from), hexKey(to));
    await run(['deleterange', `0x${hexKey(from)}`, `0x${hexKey(to)}`]);
  };

  await ldb(db, ['--create_if_missing', '--hex', ...recipe.flags, 'put', '0x00', '0x00']);
  model.put('00', '00');
  await editOptions(db, recipe.tableOptions);

  const bulk: string[] = [];
  for (const index of Array.from({ length: recipe.keys }, (_, i) => i).sort(() => next() - 0.5))
    put(bulk, index, `a${index}`);
  await run([], bulk.join('\n'));
  const churn: string[] = [];
  for (let i = 0; i < recipe.keys / 4; i++) put(churn, pick(), `b${i}`);
  for (let i = 0; i < recipe.keys / 6; i++) del(churn, pick());
  await run([], churn.join('\n'));
  await deleteRange(100, 150);
  await run(['compact']);
  const small: string[] = [];
  for (let i = 0; i < 30; i++) put(small, pick(), `c${i}`);
  for (let i = 0; i < 10; i++) del(small, pick());
  await run([], small.join('\n'));
  await deleteRange(700, 720);
  const last: string[] = [];
  for (let i = 0; i < 60; i++) put(last, pick(), `d${i}`);
  for (let i = 0; i < 40; i++) del(last, pick());
  put(last, recipe.keys + 1, 'big', 100_000);
  put(last, '00ff00', 'binary-key');
  put(last, 'ffff', 'all-ones');
  put(last, recipe.keys + 2, 'empty-value', 0);
  await run([], last.join('\n'));
  if (recipe.endWithRangeDeletion) await deleteRange(1000, 1010);
}

function ldbQuery(db: string, recipe: Recipe, input: string): Promise<string> {
  return ldbWithInput(db, ['--hex', ...recipe.flags, 'query'], `${input}\n`);
}

async function ldbWithInput(db: string, args: string[], input: string): Promise<string> {
  const { runPeerOk } = await import('@x/test-utils');
  const { stdout } = await runPeerOk('ldb', [`--db=${db}`, ...args], { input });
  if (/Failed|error/i.test(stdout))
    throw new Error(`ldb query reported a failure: ${stdout.slice(0, 500)}`);
  return stdout;
}

/** Rewrites `name=value` lines of the newest OPTIONS file: ldb loads it on the next open. */
async function editOptions(db: string, replacements: Record<string, string>): Promise<void> {
  if (Object.keys(replacements).length === 0) return;
  const latest = (await readdir(db))
    .filter((name) => name.startsWith('OPTIONS-'))
    .sort()
    .at(-1);
  if (latest === undefined) throw new Error(`no OPTIONS file in ${db}`);
  let text = await readFile(join(db, latest), 'utf8');
  for (const [name, value] of Object.entries(replacements)) {
    const pattern = new RegExp(`^(\\s*${name}=).*$`, 'm');
    if (!pattern.test(text)) throw new Error(`OPTIONS has no ${name}`);
    text = text.replace(pattern, `$1${value}`);
  }
  await writeFile(join(db, latest), text);
}

async function rocksdbFixture(recipe: Recipe) {
  const root = await cachedFixture(
    PACKAGE_ROOT,
    `rocksdb-${recipe.name}`,
    `${JSON.stringify(recipe)} v1`,
    async (scratch) => {
      const model = new Model();
      const db = join(scratch, 'db');
      await buildRocksDb(db, recipe, model);
      await writeFile(join(scratch, 'ldb.json'), JSON.stringify(await rocksDbListing(db)));
      await writeFile(join(scratch, 'model.json'), JSON.stringify(model.listing()));
    },
  );
  return {
    directory: join(root, 'db'),
    expected: JSON.parse(await readFile(join(root, 'ldb.json'), 'utf8')) as Array<[string, string]>,
    model: JSON.parse(await readFile(join(root, 'model.json'), 'utf8')) as Array<[string, string]>,
  };
}

describe('RocksDB databases made by ldb', () => {
  it.each(RECIPES.map((recipe) => [recipe.name, recipe] as const))(
    '%s: the same entries as ldb scan',
    async (_name, recipe) => {
      const { directory, expected, model } = await rocksdbFixture(recipe);
      expect(expected.length).toBe(model.length);
      expect(expected).toEqual(model);
      const store = await openKvStore(directory);
      try {
        expect(store.kind).toBe('rocksdb');
        expect(store.files.logs.length).toBeGreaterThan(0);
        // How many tables ldb's background compactions leave depends on timing (a loaded CI
        // machine merges more): assert only that the store is spread over several.
        expect(store.files.tables.length).toBeGreaterThanOrEqual(recipe.minimumTables ?? 2);
        expect(await readAll(store)).toEqual(expected);
        expect(store.warnings).toEqual([]);
        const live = new Map(expected);
        const next = random(recipe.seed + 100);
        for (let i = 0; i < 200; i++) {
          const key = Buffer.from(keyOf(Math.floor(next() * (recipe.keys + 3))));
          expect((await store.get(key))?.toString('hex')).toBe(live.get(key.toString('hex')));
        }
        const start = Buffer.from(keyOf(90));
        const end = Buffer.from(keyOf(1020));
        expect(await readAll(store, { start, end })).toEqual(
          expected.filter(
            ([key]) =>
              Buffer.compare(Buffer.from(key, 'hex'), start) >= 0 &&
              Buffer.compare(Buffer.from(key, 'hex'), end) < 0,
          ),
        );
      } finally {
        await store.close();
      }
    },
  );
});
