import { cp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockIoError } from '@x/blockio';
import { FuzzOutcomes, fuzzParameters, makeTempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openKvStore } from '../src/index.js';
import { levelDbListing, rocksDbListing } from './support/peer-stores.js';
import { readAll } from './support/read-all.js';
import { baseLevelDb, baseRocksDb } from './support/small-stores.js';

const EXPECTED_CODES = new Set([
  'NOT_A_DATABASE',
  'BAD_CURRENT',
  'BAD_MANIFEST',
  'BAD_LOG_RECORD',
  'BAD_WRITE_BATCH',
  'BAD_CHECKSUM',
  'BAD_TABLE',
  'BAD_BLOCK',
  'BAD_COMPRESSION',
  'BAD_ORDER',
  'TRUNCATED',
  'MISSING_FILE',
  'UNSUPPORTED',
]);

const outcomes = new FuzzOutcomes(
  (error: unknown): error is BlockIoError => error instanceof BlockIoError,
  EXPECTED_CODES,
);
afterAll(() => outcomes.printStats());

const damageArbitrary = fc.record({
  store: fc.constantFrom('leveldb-snappy', 'leveldb-plain', 'rocksdb'),
  file: fc.nat(),
  kind: fc.constantFrom('flip', 'truncate', 'overwrite'),
  position: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
});

/**
 * Random damage to any file of a real store (tables, manifest, logs, CURRENT): opening
 * and reading either fails with a typed error naming the damaged store, or succeeds
 * with exactly the undamaged listing, or (a log cut short) with what plyvel / ldb read
 * from the same damaged copy. Never a TypeError, a hang or a silently different answer.
 */
describe('damaged stores', () => {
  it('fail typed, or read right, or warn', async () => {
    const pristine = new Map<string, { directory: string; listing: Array<[string, string]> }>();
    for (const [name, make] of [
      ['leveldb-snappy', () => baseLevelDb('snappy')],
      ['leveldb-plain', () => baseLevelDb(null)],
      ['rocksdb', () => baseRocksDb()],
    ] as const) {
      const directory = await make();
      const store = await openKvStore(directory);
      pristine.set(name, { directory, listing: await readAll(store) });
      await store.close();
    }
    const temp = await makeTempDir('kvstore-fuzz-');
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(damageArbitrary, async (damage) => {
          const source = pristine.get(damage.store) as {
            directory: string;
            listing: Array<[string, string]>;
          };
          const db = temp.file(`db-${run++}`);
          await cp(source.directory, db, { recursive: true });
          const files = (await readdir(db))
            .filter((name) => !name.startsWith('LOG') && name !== 'LOCK')
            .sort();
          const file = join(db, files[damage.file % files.length] as string);
          const { size } = await stat(file);
          const at = Math.floor(damage.position * size);
          if (damage.kind === 'truncate') {
            await truncate(file, at);
          } else if (size > 0) {
            const content = await readFile(file);
            for (const [index, byte] of damage.bytes.entries()) {
              const offset = at + index;
              if (offset >= size) break;
              content[offset] =
                damage.kind === 'flip' ? (content[offset] as number) ^ (byte || 1) : byte;
            }
            await writeFile(file, content);
          }
          let listing: Array<[string, string]> | undefined;
          let warnings = 0;
          const failure = await outcomes.outcome(damage.kind, db, async () => {
            const store = await openKvStore(db);
            try {
              listing = await readAll(store);
              warnings = store.warnings.length;
            } finally {
              await store.close();
            }
          });
          if (failure !== undefined) return;
          if (damage.kind === 'truncate' && file.endsWith('.log')) {
            // A log cut anywhere reads as the real library reads it: records after the cut
            // are gone (a cut at a record boundary is invisible to any reader).
            const peer =
              damage.store === 'rocksdb' ? await rocksDbListing(db) : await levelDbListing(db);
            expect(listing).toEqual(peer);
          } else if (warnings === 0) {
            expect(listing).toEqual(source.listing);
          }
        }),
        fuzzParameters('FUZZ_KVSTORE_DAMAGE_RUNS', 150),
      );
    } finally {
      await temp.remove();
    }
  }, 300_000);
});
