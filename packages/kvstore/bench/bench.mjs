// @x/kvstore benchmarks: a full scan against the real libraries. Protocol and method:
// tools/bench/README.md. Whole processes, Node's and Python's start-up included.
//
// Input (made once, cached in .fixtures/ keyed by the recipe below): N entries with
// keys `key-%08d` and values of 30-180 bytes (a 60-byte random pattern repeated, so
// snappy compresses it), written by the real library and compacted:
// - RocksDB: `ldb load --compact` (RocksDB 7.8 defaults: snappy, XXH3 block checksums,
//   format_version 5);
// - LevelDB: plyvel (system /usr/bin/python3), batches of 10,000, snappy, compact_range.
// N = 1,000,000 (about 110 MB of keys and values); --quick: 100,000.
//
// Cases (what is timed: one whole command):
// - scan-rocksdb: node bench/scan.mjs <db>  vs  ldb --db=<db> --secondary_path=<tmp> scan
//   (secondary: ldb opens the store without writing to it, as ours does)
// - scan-leveldb: node bench/scan.mjs <db>  vs  python3 plyvel iterating every entry
// No target (information only): the issue sets none for the KV readers; they serve
// rbd-recover, whose omap reads are small.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCases } from '@x/bench';
import { cachedFixture } from '@x/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const PYTHON = '/usr/bin/python3';

const count = (quick) => (quick ? 100_000 : 1_000_000);

async function rocksdb(quick) {
  const n = count(quick);
  const directory = await cachedFixture(
    packageRoot,
    `bench-rocksdb-${n}`,
    `ldb load --compact v1 ${n}`,
    async (dir) => {
      const pattern = Buffer.from(
        Array.from({ length: 60 }, (_, i) => (i * 37 + 11) % 256),
      ).toString('hex');
      const lines = [];
      for (let i = 0; i < n; i++) {
        lines.push(
          `key-${String(i).padStart(8, '0')} ==> ${pattern.repeat(3).slice(0, ((i % 150) + 30) * 2)}`,
        );
      }
      writeFileSync(join(dir, 'load.txt'), `${lines.join('\n')}\n`);
      execFileSync(
        'sh',
        [
          '-c',
          `ldb --db="${join(dir, 'db')}" --create_if_missing load --compact < "${join(dir, 'load.txt')}"`,
        ],
        {
          stdio: 'ignore',
        },
      );
      rmSync(join(dir, 'load.txt'));
    },
  );
  return join(directory, 'db');
}

const PLYVEL_LOAD = `
import plyvel, sys
path, n = sys.argv[1], int(sys.argv[2])
pattern = bytes((i * 37 + 11) % 256 for i in range(60)) * 3
db = plyvel.DB(path, create_if_missing=True)
for start in range(0, n, 10000):
    with db.write_batch() as batch:
        for i in range(start, min(n, start + 10000)):
            batch.put(b'key-%08d' % i, pattern[: (i % 150) + 30])
db.compact_range()
db.close()
`;

const PLYVEL_SCAN = `
import plyvel, sys
db = plyvel.DB(sys.argv[1])
entries = size = 0
for key, value in db:
    entries += 1
    size += len(key) + len(value)
db.close()
print(entries, size)
`;

async function leveldb(quick) {
  const n = count(quick);
  const directory = await cachedFixture(
    packageRoot,
    `bench-leveldb-${n}`,
    `plyvel load v1 ${n}`,
    async (dir) => {
      execFileSync(PYTHON, ['-c', PLYVEL_LOAD, join(dir, 'db'), String(n)], { stdio: 'ignore' });
    },
  );
  return join(directory, 'db');
}

const scan = join(here, 'scan.mjs');

await runCases([
  {
    name: 'scan-rocksdb',
    prepare: async ({ quick }) => {
      const db = await rocksdb(quick);
      const secondary = join(packageRoot, '.fixtures', 'bench-ldb-secondary');
      mkdirSync(secondary, { recursive: true });
      return {
        pkg: '@x/kvstore',
        ours: {
          name: `@x/kvstore scan (${count(quick).toLocaleString('en')} entries)`,
          argv: [process.execPath, scan, db],
          outputs: [],
        },
        peers: [
          {
            name: 'ldb scan (secondary, read-only)',
            argv: ['ldb', `--db=${db}`, `--secondary_path=${secondary}`, 'scan'],
            outputs: [],
          },
        ],
        target: null,
      };
    },
  },
  {
    name: 'scan-leveldb',
    prepare: async ({ quick }) => {
      const db = await leveldb(quick);
      return {
        pkg: '@x/kvstore',
        ours: {
          name: `@x/kvstore scan (${count(quick).toLocaleString('en')} entries)`,
          argv: [process.execPath, scan, db],
          outputs: [],
        },
        peers: [{ name: 'plyvel iteration', argv: [PYTHON, '-c', PLYVEL_SCAN, db], outputs: [] }],
        target: null,
      };
    },
  },
]);
