import { readdir, readlink } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { openKvStore, prefixSuccessor } from '../src/index.js';
import { readAll } from './support/read-all.js';
import { baseLevelDb, baseRocksDb } from './support/small-stores.js';

/** File descriptors of this process open on files under `directory`. */
async function openFilesUnder(directory: string): Promise<string[]> {
  const found: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    try {
      const target = await readlink(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${directory}/`)) found.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return found;
}

describe('the KvStore API', () => {
  it.each([
    ['leveldb', () => baseLevelDb('snappy')],
    ['rocksdb', () => baseRocksDb()],
  ] as const)(
    '%s: lookups, abandoned and concurrent iterations leave no file open after close',
    async (_kind, make) => {
      const directory = await make();
      const store = await openKvStore(directory);
      const all = await readAll(store);
      for (const [key, value] of all.slice(0, 100)) {
        expect((await store.get(Buffer.from(key, 'hex')))?.toString('hex')).toBe(value);
      }
      // An iteration given up after one entry, and two running side by side.
      for await (const _ of store.entries()) break;
      const [left, right] = await Promise.all([
        readAll(store),
        readAll(store, { start: Buffer.from('key-0100') }),
      ]);
      expect(left).toEqual(all);
      expect(right).toEqual(
        all.filter(
          ([key]) => Buffer.compare(Buffer.from(key, 'hex'), Buffer.from('key-0100')) >= 0,
        ),
      );
      await store.close();
      expect(await openFilesUnder(directory)).toEqual([]);
      await expect(readAll(store)).rejects.toMatchObject({ code: 'CLOSED' });
    },
  );

  it('an empty or inverted range is empty; an all-0xff prefix has no upper bound', async () => {
    const store = await openKvStore(await baseLevelDb('snappy'));
    try {
      expect(
        await readAll(store, { start: Buffer.from('key-0200'), end: Buffer.from('key-0100') }),
      ).toEqual([]);
      expect(
        await readAll(store, { start: Buffer.from('key-0200'), end: Buffer.from('key-0200') }),
      ).toEqual([]);
      expect(await readAll(store, { prefix: Buffer.from('nothing-here') })).toEqual([]);
      expect(prefixSuccessor(Buffer.from([0x61, 0xff, 0xff]))).toEqual(Buffer.from([0x62]));
      expect(prefixSuccessor(Buffer.from([0xff, 0xff]))).toBeUndefined();
      // prefix and start together: the later bound wins.
      const keys = (
        await readAll(store, { prefix: Buffer.from('key-01'), start: Buffer.from('key-0150') })
      ).map(([key]) => Buffer.from(key, 'hex').toString());
      expect(keys[0]).toBe('key-0150');
      expect(keys.at(-1)).toBe('key-0199');
    } finally {
      await store.close();
    }
  });

  it('an aborted open is ABORTED', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      openKvStore(await baseLevelDb('snappy'), { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});
