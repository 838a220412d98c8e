import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAGIC_SOURCES } from '../src/format/magics.js';
import * as pxar from '../src/format/pxar.js';
import {
  blobKind,
  checkBlobCrc,
  decodeBlob,
  formatSnapshotPath,
  manifestWithoutVerifyState,
  parseChunkIndex,
  parseManifest,
  parseSnapshotPath,
  parseStoreMapping,
  parseStoreSnapshot,
  pxarHash,
  TapeRestoreError,
  targetStore,
  verifyChunk,
} from '../src/index.js';
import {
  chunkDigest,
  encodeDataBlob,
  encodeZstdFrame,
  fixtureKey,
  goodbyeOrder,
} from '../src/testing/index.js';
import { runnyBytes } from './support/fixtures.js';
import { flip } from './support/tape-files.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TapeRestoreError);
    return (error as TapeRestoreError).code;
  }
  throw new Error('did not throw');
};
const asyncCode = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TapeRestoreError);
  return (error as TapeRestoreError).code;
};

describe('magics', () => {
  it.each(MAGIC_SOURCES.map(([bytes, source]) => [source, bytes] as const))(
    '%s = SHA-256[0..8]',
    (source, bytes) => {
      expect(Buffer.from(bytes).toString('hex')).toBe(
        createHash('sha256').update(source).digest('hex').slice(0, 16),
      );
    },
  );

  it('pxar item types are SipHash-2-4 of their names (§8 test vectors)', () => {
    expect(pxarHash('__PROXMOX_FORMAT_ENTRY_V2__')).toBe(pxar.PXAR_ENTRY);
    expect(pxarHash('__PROXMOX_FORMAT_ENTRY__')).toBe(pxar.PXAR_ENTRY_V1);
    expect(pxarHash('__PROXMOX_FORMAT_FILENAME__')).toBe(pxar.PXAR_FILENAME);
    expect(pxarHash('__PROXMOX_FORMAT_PXAR_PAYLOAD__')).toBe(pxar.PXAR_PAYLOAD);
    expect(pxarHash('__PROXMOX_FORMAT_GOODBYE__')).toBe(pxar.PXAR_GOODBYE);
    expect(pxarHash('__PROXMOX_FORMAT_PXAR_GOODBYE_TAIL_MARKER__')).toBe(
      pxar.PXAR_GOODBYE_TAIL_MARKER,
    );
    expect(pxarHash('index.json.blob')).toBe(0x6f5c8a818879259dn);
  });

  it('lays out goodbye tables as pxar does (§8 slot vectors)', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(goodbyeOrder)).toEqual([
      [0],
      [1, 0],
      [1, 0, 2],
      [2, 1, 3, 0],
      [3, 1, 4, 0, 2],
      [3, 1, 5, 0, 2, 4],
      [3, 1, 5, 0, 2, 4, 6],
      [4, 2, 6, 1, 3, 5, 7, 0],
    ]);
  });
});

describe('DataBlob', () => {
  const plain = runnyBytes(300_000, 1);
  const digest = chunkDigest(plain);

  it('decodes all four magics; zstd frames with and without content size', async () => {
    const uncompressed = encodeDataBlob(plain, { compress: false });
    const streaming = encodeDataBlob(plain, { contentSize: false });
    const sized = encodeDataBlob(plain, { contentSize: true });
    expect(blobKind(uncompressed)).toBe('uncompressed');
    expect(blobKind(streaming)).toBe('compressed');
    expect(streaming.byteLength).toBeLessThan(plain.byteLength);
    for (const blob of [uncompressed, streaming, sized]) {
      expect((await decodeBlob(blob, {})).equals(plain)).toBe(true);
      expect(await verifyChunk(digest, blob, {})).toBe(blobKind(blob));
    }
    const key = fixtureKey('k');
    const encrypted = encodeDataBlob(plain, { key, compress: false });
    const both = encodeDataBlob(plain, { key });
    expect(blobKind(encrypted)).toBe('encrypted');
    expect(blobKind(both)).toBe('encrypted-compressed');
    // Encrypted chunks: CRC only, the digest cannot be checked without the key.
    expect(await verifyChunk(chunkDigest(plain, key), both, {})).toBe('encrypted-compressed');
    expect(await asyncCode(decodeBlob(both, {}))).toBe('UNSUPPORTED');
  });

  it('refuses a wrong magic, a short blob, a CRC mismatch and a wrong digest', async () => {
    const blob = encodeDataBlob(plain);
    const badMagic = Buffer.from(blob);
    flip(badMagic, 0, 1);
    expect(code(() => checkBlobCrc(badMagic, {}))).toBe('BAD_MAGIC');
    expect(code(() => checkBlobCrc(blob.subarray(0, 10), {}))).toBe('BAD_BLOB');
    const badCrc = Buffer.from(blob);
    flip(badCrc, 100, 1);
    expect(code(() => checkBlobCrc(badCrc, {}))).toBe('BAD_CRC');
    const encrypted = encodeDataBlob(plain, { key: fixtureKey('k') });
    flip(encrypted, 20, 1); // the IV is not covered by the CRC (§4)
    expect(checkBlobCrc(encrypted, {})).toBe('encrypted-compressed');
    flip(encrypted, 50, 1);
    expect(code(() => checkBlobCrc(encrypted, {}))).toBe('BAD_CRC');
    expect(await asyncCode(verifyChunk(Buffer.alloc(32), blob, {}))).toBe('BAD_DIGEST');
  });

  it('refuses zstd data that does not decompress', async () => {
    const frame = encodeZstdFrame(plain, false);
    const broken = encodeDataBlob(Buffer.alloc(0));
    const bad = Buffer.concat([broken.subarray(0, 12), frame.subarray(0, 50)]);
    bad.set(Buffer.from('31b958426fb6a37f', 'hex'), 0);
    bad.writeUInt32LE((await import('node:zlib')).crc32(bad.subarray(12)), 8);
    expect(await asyncCode(decodeBlob(bad, {}))).toBe('BAD_BLOB');
  });
});

describe('index files', () => {
  it('refuses a fidx whose length does not match its size', () => {
    const index = Buffer.alloc(4096 + 64);
    index.set(Buffer.from('2f7f41ed91fd0fcd', 'hex'), 0);
    index.writeBigUInt64LE(3n * 1024n * 1024n, 64);
    index.writeBigUInt64LE(1024n * 1024n, 72);
    expect(code(() => parseChunkIndex(index, 'fidx'))).toBe('BAD_INDEX');
    expect(parseChunkIndex(Buffer.concat([index, Buffer.alloc(32)]), 'fidx').digests).toHaveLength(
      3,
    );
    expect(code(() => parseChunkIndex(index, 'didx'))).toBe('BAD_MAGIC');
    expect(code(() => parseChunkIndex(index.subarray(0, 100), 'fidx'))).toBe('BAD_INDEX');
  });

  it('refuses a didx with a partial entry or decreasing offsets', () => {
    const index = Buffer.alloc(4096 + 80);
    index.set(Buffer.from('1c914ea519bab3cd', 'hex'), 0);
    index.writeBigUInt64LE(100n, 4096);
    index.writeBigUInt64LE(50n, 4136);
    expect(code(() => parseChunkIndex(index, 'didx'))).toBe('BAD_INDEX');
    index.writeBigUInt64LE(150n, 4136);
    expect(parseChunkIndex(index, 'didx').size).toBe(150n);
    expect(code(() => parseChunkIndex(index.subarray(0, 4096 + 41), 'didx'))).toBe('BAD_INDEX');
  });
});

describe('manifest', () => {
  const good = {
    'backup-type': 'vm',
    'backup-id': '100',
    'backup-time': 1704067200,
    files: [
      { filename: 'drive-scsi0.img.fidx', 'crypt-mode': 'none', size: 1, csum: 'a'.repeat(64) },
    ],
    unprotected: { verify_state: { state: 'ok' }, notes: 'kept' },
    signature: null,
  };
  it('drops verify_state only', () => {
    const out = JSON.parse(manifestWithoutVerifyState(parseManifest(JSON.stringify(good))));
    expect(out.unprotected).toEqual({ notes: 'kept' });
    expect(out.files).toEqual(good.files);
  });
  it.each([
    ['not JSON', '{'],
    [
      'a file outside the directory',
      JSON.stringify({ ...good, files: [{ ...good.files[0], filename: '../x.fidx' }] }),
    ],
    [
      'an absolute file name',
      JSON.stringify({ ...good, files: [{ ...good.files[0], filename: '/etc/x.blob' }] }),
    ],
    [
      'an unknown extension',
      JSON.stringify({ ...good, files: [{ ...good.files[0], filename: 'x.img' }] }),
    ],
    ['a bad csum', JSON.stringify({ ...good, files: [{ ...good.files[0], csum: 'zz' }] })],
    ['no backup-time', JSON.stringify({ ...good, 'backup-time': 'x' })],
  ])('refuses %s', (_what, text) => {
    expect(code(() => parseManifest(text))).toBe('BAD_MANIFEST');
  });
});

describe('snapshot names and store mappings', () => {
  it('parses and prints namespaced snapshots', () => {
    const name = parseSnapshotPath('ns/a/ns/b/ct/100/2021-01-01T00:00:00Z');
    expect(name).toEqual({
      namespace: ['a', 'b'],
      type: 'ct',
      id: '100',
      time: '2021-01-01T00:00:00Z',
    });
    expect(formatSnapshotPath(name)).toBe('ns/a/ns/b/ct/100/2021-01-01T00:00:00Z');
    expect(parseStoreSnapshot('s1:vm/1/2021-01-01T00:00:00Z').store).toBe('s1');
  });
  it.each([
    '../vm/100/2021-01-01T00:00:00Z',
    'ns/../vm/100/2021-01-01T00:00:00Z',
    '/vm/100/2021-01-01T00:00:00Z',
    'vm/../2021-01-01T00:00:00Z',
    'vm/100/..',
    'xx/100/2021-01-01T00:00:00Z',
    'vm/100/2021-02-30T00:00:00Z',
    'ns/a/b/vm/100/2021-01-01T00:00:00Z',
    'ns/1/ns/2/ns/3/ns/4/ns/5/ns/6/ns/7/ns/8/vm/100/2021-01-01T00:00:00Z',
  ])('refuses %s', (text) => {
    expect(code(() => parseSnapshotPath(text))).toBe('BAD_SNAPSHOT_NAME');
  });
  it('maps stores as PBS does', () => {
    const mapping = parseStoreMapping('def,store1=t1, store2=t2');
    expect(targetStore(mapping, 'store1')).toBe('t1');
    expect(targetStore(mapping, 'other')).toBe('def');
    expect(targetStore(parseStoreMapping('a=b'), 'other')).toBeUndefined();
    expect(code(() => parseStoreMapping('a,b'))).toBe('BAD_DATASTORE');
    expect(code(() => parseStoreMapping('a=b,a=c'))).toBe('BAD_DATASTORE');
  });
});
