import { cp } from 'node:fs/promises';
import { fuzzParameters, makeTempDir, runPeerOk } from '@x/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openKvStore } from '../src/index.js';
import {
  buildLevelDb,
  type LevelDbOp,
  type LevelDbSession,
  ldb,
  levelDbListing,
  rocksDbListing,
} from './support/peer-stores.js';
import { readAll } from './support/read-all.js';
import { Model } from './support/workload.js';

/** Keys from a small set (so writes collide), some with 0x00 / 0xff bytes, some prefixes of others. */
const keyArbitrary = fc.constantFrom(
  '',
  '00',
  'ff',
  '6b',
  '6b00',
  '6b01',
  '6bff',
  '6b6b',
  '6c',
  '7a7a7a',
  '00ff',
  'ffff',
  '6b3031',
  '6b3032',
);
const valueArbitrary = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  // Large values: a session of them overflows the 64 KiB write buffer and flushes mid-session.
  fc.integer({ min: 2000, max: 20_000 }).map((length) => new Uint8Array(length).fill(length % 251)),
);
const opArbitrary = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constant('put' as const), keyArbitrary, valueArbitrary) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('delete' as const), keyArbitrary) },
);
const sessionArbitrary = fc.record({
  compression: fc.constantFrom('snappy' as const, null),
  ops: fc.array(opArbitrary, { minLength: 1, maxLength: 40 }),
  compactAtEnd: fc.boolean(),
});

describe('random put/delete sessions: the reader equals plyvel', () => {
  it('for every generated history (bounded: a few dozen histories)', async () => {
    const temp = await makeTempDir('kvstore-property-');
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(sessionArbitrary, { minLength: 1, maxLength: 4 }),
          async (generated) => {
            const db = temp.file(`db-${run++}`);
            const model = new Model();
            const sessions: LevelDbSession[] = generated.map((session) => {
              const ops: LevelDbOp[] = session.ops.map((op) => {
                if (op[0] === 'put') {
                  const value = Buffer.from(op[2]).toString('hex');
                  model.put(op[1], value);
                  return ['put', op[1], value];
                }
                model.delete(op[1]);
                return ['delete', op[1]];
              });
              if (session.compactAtEnd) ops.push(['compact']);
              return {
                options: {
                  compression: session.compression,
                  write_buffer_size: 64 << 10,
                  block_size: 256,
                },
                ops,
              };
            });
            await buildLevelDb(db, sessions);
            // A pristine copy for plyvel (which writes when it opens); ours reads the original.
            await cp(db, `${db}-copy`, { recursive: true });
            const expected = await levelDbListing(`${db}-copy`);
            expect(expected).toEqual(model.listing());
            const store = await openKvStore(db);
            try {
              expect(await readAll(store)).toEqual(expected);
              for (const [key, value] of expected)
                expect((await store.get(Buffer.from(key, 'hex')))?.toString('hex')).toBe(value);
            } finally {
              await store.close();
            }
          },
        ),
        fuzzParameters('FUZZ_KVSTORE_RUNS', 25),
      );
    } finally {
      await temp.remove();
    }
  }, 300_000);
});

const rocksOpArbitrary = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constant('put' as const),
      keyArbitrary.filter((key) => key !== ''),
      valueArbitrary,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.constant('delete' as const),
      keyArbitrary.filter((key) => key !== ''),
    ),
  },
);
const rocksSessionArbitrary = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('writes' as const),
      ops: fc.array(rocksOpArbitrary, { minLength: 1, maxLength: 30 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('deleterange' as const),
      bounds: fc.tuple(
        keyArbitrary.filter((key) => key !== ''),
        keyArbitrary.filter((key) => key !== ''),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
);

describe('random RocksDB histories: the reader equals ldb scan', () => {
  it('for every generated history of writes, range deletions and compactions (bounded)', async () => {
    const temp = await makeTempDir('kvstore-property-rocksdb-');
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(rocksSessionArbitrary, { minLength: 1, maxLength: 5 }),
          async (sessions) => {
            const db = temp.file(`db-${run++}`);
            const model = new Model();
            const flags = ['--hex', '--write_buffer_size=65536'];
            await ldb(db, ['--create_if_missing', ...flags, 'put', '0x01', '0x01']);
            model.put('01', '01');
            for (const session of sessions) {
              if (session.kind === 'writes') {
                const lines = session.ops.map((op) => {
                  if (op[0] === 'put') {
                    const value = Buffer.from(op[2]).toString('hex');
                    model.put(op[1], value);
                    return `put 0x${op[1]} 0x${value}`;
                  }
                  model.delete(op[1]);
                  return `delete 0x${op[1]}`;
                });
                await runPeerOk('ldb', [`--db=${db}`, ...flags, 'query'], {
                  input: `${lines.join('\n')}\n`,
                });
              } else if (session.kind === 'deleterange') {
                const [from, to] = session.bounds;
                if (Buffer.compare(Buffer.from(from, 'hex'), Buffer.from(to, 'hex')) >= 0) continue;
                model.deleteRange(from, to);
                await ldb(db, [...flags, 'deleterange', `0x${from}`, `0x${to}`]);
              } else {
                await ldb(db, [...flags, 'compact']);
              }
            }
            const expected = await rocksDbListing(db);
            expect(expected).toEqual(model.listing());
            const store = await openKvStore(db);
            try {
              expect(await readAll(store)).toEqual(expected);
              const live = new Map(expected);
              for (const key of [
                '00',
                'ff',
                '6b',
                '6b00',
                '6b01',
                '6bff',
                '6b6b',
                '6c',
                '7a7a7a',
                '00ff',
                'ffff',
                '6b3031',
                '6b3032',
              ]) {
                expect((await store.get(Buffer.from(key, 'hex')))?.toString('hex')).toBe(
                  live.get(key),
                );
              }
            } finally {
              await store.close();
            }
          },
        ),
        fuzzParameters('FUZZ_KVSTORE_ROCKSDB_RUNS', 10),
      );
    } finally {
      await temp.remove();
    }
  }, 300_000);
});
