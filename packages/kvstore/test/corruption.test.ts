import { cp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c, maskCrc32c } from '@x/blockio';
import { makeTempDir, pokeBytes, readBytes, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cursor } from '../src/cursor.js';
import { KvStoreError, openKvStore } from '../src/index.js';
import { Table } from '../src/table.js';
import {
  frameLogRecord,
  frameRecyclableRecord,
  putRecord,
  writeBatch,
} from './support/log-frame.js';
import { levelDbListing } from './support/peer-stores.js';
import { readAll } from './support/read-all.js';
import { baseLevelDb, baseRocksDb } from './support/small-stores.js';

let temp: TempDir;
beforeEach(async () => {
  temp = await makeTempDir('kvstore-corrupt-');
});
afterEach(async () => {
  await temp.remove();
});

async function copyOf(directory: string): Promise<string> {
  const copy = temp.file('db');
  await cp(directory, copy, { recursive: true });
  return copy;
}

const named = async (directory: string, pattern: RegExp): Promise<string[]> =>
  (await readdir(directory)).filter((name) => pattern.test(name)).sort();

/** Opens and reads everything; returns the typed error it must fail with. */
async function failure(directory: string): Promise<KvStoreError> {
  try {
    const store = await openKvStore(directory);
    try {
      await readAll(store);
    } finally {
      await store.close();
    }
  } catch (error) {
    if (error instanceof KvStoreError) return error;
    throw error;
  }
  throw new Error('expected a KvStoreError, the store read fine');
}

/** The first data block of a table: its handle from the first index entry. */
async function firstDataBlock(
  path: string,
  kind: 'leveldb' | 'rocksdb',
): Promise<{ offset: number; size: number }> {
  const table = await Table.open(path, kind);
  const index = await table.index();
  for (const entry of index.entries()) {
    const cursor = table.indexValueDeltaEncoded
      ? entry.cursor
      : new Cursor(entry.value, index.where, 'BAD_BLOCK');
    return { offset: cursor.varint64('offset'), size: cursor.varint64('size') };
  }
  throw new Error('empty index');
}

/** Rewrites a block's contents and its CRC-32C trailer, so only the contents are wrong. */
async function rewriteBlock(
  path: string,
  block: { offset: number; size: number },
  edit: (contents: Buffer) => void,
): Promise<void> {
  const raw = await readBytes(path, block.offset, block.size + 5);
  const contents = raw.subarray(0, block.size);
  edit(contents);
  raw.writeUInt32LE(maskCrc32c(crc32c(raw.subarray(0, block.size + 1))), block.size + 1);
  await pokeBytes(path, block.offset, raw);
}

/** XORs one byte of a file with `mask`. */
async function flipBits(path: string, offset: number, mask: number): Promise<void> {
  const [byte = 0] = await readBytes(path, offset, 1);
  await pokeBytes(path, offset, Buffer.from([byte ^ mask]));
}

function expectLocated(error: KvStoreError, file: RegExp, structure: RegExp): void {
  expect(error.path).toMatch(file);
  expect(typeof error.offset).toBe('number');
  expect(error.structure).toMatch(structure);
  expect(error.describe()).toContain(`[${error.code}]`);
}

describe('corrupt LevelDB stores give typed errors naming file, offset and structure', () => {
  it('a flipped byte in a data block: BAD_CHECKSUM', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const [table] = await named(db, /\.ldb$/);
    const block = await firstDataBlock(join(db, table as string), 'leveldb');
    await flipBits(join(db, table as string), block.offset + 3, 0x5a);
    const error = await failure(db);
    expect(error.code).toBe('BAD_CHECKSUM');
    expect(error.offset).toBe(block.offset);
    expectLocated(error, /\.ldb$/, /data block/);
  });

  it('a flipped byte in the index block: BAD_CHECKSUM when the table is first read', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const [name] = await named(db, /\.ldb$/);
    const path = join(db, name as string);
    const table = await Table.open(path, 'leveldb');
    const at = table.indexHandle.offset + 2;
    await flipBits(path, at, 0xff);
    const error = await failure(db);
    expect(error).toMatchObject({
      code: 'BAD_CHECKSUM',
      structure: 'index block',
      offset: table.indexHandle.offset,
    });
  });

  it('a wrong table magic: BAD_TABLE at the footer', async () => {
    const db = await copyOf(await baseLevelDb(null));
    const [name] = await named(db, /\.ldb$/);
    const path = join(db, name as string);
    const size = (await readFile(path)).length;
    await pokeBytes(path, size - 8, Buffer.from('notmagic'));
    const error = await failure(db);
    expect(error.code).toBe('BAD_TABLE');
    expect(error.offset).toBe(size - 8);
    expectLocated(error, /\.ldb$/, /table footer/);
  });

  it('a table cut short: BAD_TABLE or TRUNCATED, never a silent short listing', async () => {
    const db = await copyOf(await baseLevelDb(null));
    const [name] = await named(db, /\.ldb$/);
    await truncate(join(db, name as string), 20);
    const error = await failure(db);
    expect(['BAD_TABLE', 'TRUNCATED']).toContain(error.code);
  });

  it('a restart count that does not fit its block (checksum made right): BAD_BLOCK', async () => {
    const db = await copyOf(await baseLevelDb(null));
    const [name] = await named(db, /\.ldb$/);
    const path = join(db, name as string);
    const block = await firstDataBlock(path, 'leveldb');
    await rewriteBlock(path, block, (contents) =>
      contents.writeUInt32LE(0x7fff0000, contents.length - 4),
    );
    const error = await failure(db);
    expect(error.code).toBe('BAD_BLOCK');
    expectLocated(error, /\.ldb$/, /data block/);
  });

  it('snappy data that does not decompress (checksum made right): BAD_COMPRESSION', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const [name] = await named(db, /\.ldb$/);
    const path = join(db, name as string);
    const block = await firstDataBlock(path, 'leveldb');
    expect((await readBytes(path, block.offset + block.size, 1))[0]).toBe(1);
    // A declared uncompressed length far beyond any block.
    await rewriteBlock(path, block, (contents) => contents.set([0xff, 0xff, 0xff, 0xff, 0x0f], 0));
    const error = await failure(db);
    expect(error.code).toBe('BAD_COMPRESSION');
    expectLocated(error, /\.ldb$/, /data block/);
  });

  it('a table the manifest lists is gone: MISSING_FILE', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const [name] = await named(db, /\.ldb$/);
    await rm(join(db, name as string));
    const error = await failure(db);
    expect(error.code).toBe('MISSING_FILE');
    expectLocated(error, /\.ldb$/, /table file/);
  });

  it('CURRENT missing or not naming a manifest: NOT_A_DATABASE, BAD_CURRENT', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    await writeFile(join(db, 'CURRENT'), 'MANIFEST-000001');
    expect((await failure(db)).code).toBe('BAD_CURRENT');
    await rm(join(db, 'CURRENT'));
    expect((await failure(db)).code).toBe('NOT_A_DATABASE');
  });

  it('a flipped byte in the manifest: BAD_CHECKSUM on the manifest record', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const [manifest] = await named(db, /^MANIFEST-/);
    const path = join(db, manifest as string);
    await flipBits(path, 12, 0x01);
    const error = await failure(db);
    expect(error.code).toBe('BAD_CHECKSUM');
    expect(error.offset).toBe(0);
    expectLocated(error, /MANIFEST-/, /manifest record/);
  });

  it('a manifest record with a good checksum and an unknown tag: BAD_MANIFEST', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    await writeFile(join(db, 'MANIFEST-999999'), frameLogRecord(Buffer.from([99, 1, 2, 3])));
    await writeFile(join(db, 'CURRENT'), 'MANIFEST-999999\n');
    const error = await failure(db);
    expect(error.code).toBe('BAD_MANIFEST');
    expectLocated(error, /MANIFEST-999999$/, /VersionEdit/);
  });

  it('a flipped byte in a log record: BAD_CHECKSUM on the log record', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const logs = await named(db, /\.log$/);
    const path = join(db, logs.at(-1) as string);
    await flipBits(path, 20, 0x10);
    const error = await failure(db);
    expect(error.code).toBe('BAD_CHECKSUM');
    expect(error.offset).toBe(0);
    expectLocated(error, /\.log$/, /log record/);
  });

  it('a write batch whose count is wrong (checksum right): BAD_WRITE_BATCH', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    await writeFile(
      join(db, '999999.log'),
      frameLogRecord(writeBatch(1000n, 5, putRecord('k', 'v'))),
    );
    const error = await failure(db);
    expect(error.code).toBe('BAD_WRITE_BATCH');
    expectLocated(error, /999999\.log$/, /write batch/);
  });

  it('a log fragment out of order: BAD_LOG_RECORD', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    // A MIDDLE fragment (type 3) with no FIRST before it.
    await writeFile(
      join(db, '999999.log'),
      frameLogRecord(writeBatch(1000n, 1, putRecord('k', 'v')), 3),
    );
    const error = await failure(db);
    expect(error.code).toBe('BAD_LOG_RECORD');
    expectLocated(error, /999999\.log$/, /log record/);
  });

  it('a log cut in its last record: that record dropped with a warning, as LevelDB does (plyvel agrees)', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const logs = await named(db, /\.log$/);
    const path = join(db, logs.at(-1) as string);
    const size = (await readFile(path)).length;
    await truncate(path, size - 5);
    const expected = await levelDbListing(db);
    const store = await openKvStore(db);
    try {
      expect(await readAll(store)).toEqual(expected);
      expect(store.warnings).toHaveLength(1);
      expect(store.warnings.at(0)).toMatchObject({ code: 'TRUNCATED_LOG_RECORD', path });
      // The dropped record is the last write (the deletion of key-0003): the key is back.
      expect((await store.get(Buffer.from('key-0003')))?.toString()).toContain('value 3');
    } finally {
      await store.close();
    }
  });

  it('a log whose last fragmented record lost its LAST fragment: dropped with a warning', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    const batch = writeBatch(5000n, 1, putRecord('zz-first-only', 'x'));
    await writeFile(join(db, '999999.log'), frameLogRecord(batch, 2));
    const warnings: string[] = [];
    const store = await openKvStore(db, { onWarning: (warning) => warnings.push(warning.code) });
    try {
      expect(warnings).toEqual(['TRUNCATED_LOG_RECORD']);
      expect(await store.get(Buffer.from('zz-first-only'))).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('a closed store refuses reads: CLOSED', async () => {
    const store = await openKvStore(await baseLevelDb('snappy'));
    await store.close();
    await expect(store.get(Buffer.from('key-0001'))).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('corrupt RocksDB stores give typed errors', () => {
  it('a flipped byte in an XXH3-checksummed data block: BAD_CHECKSUM', async () => {
    const db = await copyOf(await baseRocksDb());
    const tables = await named(db, /\.sst$/);
    const path = join(db, tables[0] as string);
    const block = await firstDataBlock(path, 'rocksdb');
    await flipBits(path, block.offset + 5, 0x40);
    const error = await failure(db);
    expect(error.code).toBe('BAD_CHECKSUM');
    expect(error.message).toContain('XXH3');
    expectLocated(error, /\.sst$/, /data block/);
  });

  it('a flipped byte in the manifest: BAD_CHECKSUM', async () => {
    const db = await copyOf(await baseRocksDb());
    const [manifest] = await named(db, /^MANIFEST-/);
    const path = join(db, manifest as string);
    await flipBits(path, 30, 0x01);
    const error = await failure(db);
    expect(error.code).toBe('BAD_CHECKSUM');
    expectLocated(error, /MANIFEST-/, /manifest record/);
  });

  it('a bad format_version in the footer: BAD_TABLE / UNSUPPORTED', async () => {
    const db = await copyOf(await baseRocksDb());
    const tables = await named(db, /\.sst$/);
    const path = join(db, tables[0] as string);
    const size = (await readFile(path)).length;
    await pokeBytes(path, size - 12, Buffer.from([9, 0, 0, 0]));
    const error = await failure(db);
    expect(error.code).toBe('UNSUPPORTED');
    expectLocated(error, /\.sst$/, /table footer/);
  });
});

describe('missing files', () => {
  it('CURRENT naming a manifest that is not there: MISSING_FILE', async () => {
    const db = await copyOf(await baseLevelDb('snappy'));
    await writeFile(join(db, 'CURRENT'), 'MANIFEST-424242\n');
    const error = await failure(db);
    expect(error.code).toBe('MISSING_FILE');
    expectLocated(error, /MANIFEST-424242$/, /manifest/);
  });
});

describe('recycled RocksDB logs (recycle_log_file_num)', () => {
  const live = (sequence: bigint, key: string) =>
    frameRecyclableRecord(writeBatch(sequence, 1, putRecord(key, 'live')), 999999);

  it('records of the older log the file was end the live ones, as in RocksDB recovery', async () => {
    const db = await copyOf(await baseRocksDb());
    const old = frameRecyclableRecord(writeBatch(1n, 1, putRecord('zz-old', 'stale')), 999990);
    await writeFile(
      join(db, '999999.log'),
      Buffer.concat([live(100000n, 'zz-a'), live(100001n, 'zz-b'), old]),
    );
    const store = await openKvStore(db);
    try {
      expect((await store.get(Buffer.from('zz-b')))?.toString()).toBe('live');
      expect(await store.get(Buffer.from('zz-old'))).toBeUndefined();
      expect(store.warnings).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('leftover bytes after the live records end the log; the same bytes in a plain log are an error', async () => {
    const db = await copyOf(await baseRocksDb());
    // A record header with a wrong checksum, then more junk.
    const leftover = Buffer.concat([
      Buffer.from([0x5a, 0x5a, 0x5a, 0x5a, 10, 0, 1]),
      Buffer.alloc(200, 0x5a),
    ]);
    await writeFile(join(db, '999999.log'), Buffer.concat([live(100000n, 'zz-a'), leftover]));
    const store = await openKvStore(db);
    try {
      expect((await store.get(Buffer.from('zz-a')))?.toString()).toBe('live');
    } finally {
      await store.close();
    }
    const plain = frameLogRecord(writeBatch(100000n, 1, putRecord('zz-a', 'live')));
    await writeFile(join(db, '999999.log'), Buffer.concat([plain, leftover]));
    expect((await failure(db)).code).toBe('BAD_CHECKSUM');
  });
});
