import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requirePeer } from '@x/test-utils';
import type { KvStore, KvStoreOpener } from '../../src/index.js';

const run = promisify(execFile);

/**
 * A KvStore read by the real libraries (plyvel for LevelDB, RocksDB's ldb), on a copy
 * since both may write to a store they open: what the package's own readers must equal.
 */
export const peerKvOpener: KvStoreOpener = async (directory) => {
  const files = await readdir(directory);
  const kind = files.some((file) => file.endsWith('.sst') || file.startsWith('OPTIONS-'))
    ? 'rocksdb'
    : 'leveldb';
  const copy = await mkdtemp(join(tmpdir(), 'peer-kv-'));
  try {
    await cp(directory, copy, { recursive: true });
    const pairs: Array<[Buffer, Buffer]> = [];
    if (kind === 'leveldb') {
      const script =
        'import plyvel,sys\ndb=plyvel.DB(sys.argv[1])\nfor k,v in db: print(k.hex(), v.hex())';
      const { stdout } = await run('/usr/bin/python3', ['-c', script, copy], {
        maxBuffer: 1 << 28,
      });
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        const [key = '', value = ''] = line.split(' ');
        pairs.push([Buffer.from(key, 'hex'), Buffer.from(value, 'hex')]);
      }
    } else {
      const { stdout } = await run(requirePeer('ldb'), [`--db=${copy}`, 'scan', '--hex'], {
        maxBuffer: 1 << 28,
      });
      for (const line of stdout.split('\n')) {
        const match = /^0x([0-9A-F]*) : 0x([0-9A-F]*)$/.exec(line.trim());
        if (match)
          pairs.push([
            Buffer.from(match[1] as string, 'hex'),
            Buffer.from(match[2] as string, 'hex'),
          ]);
      }
    }
    pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
    return memoryKvStore(kind, pairs);
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
};

export function memoryKvStore(
  kind: 'leveldb' | 'rocksdb',
  pairs: ReadonlyArray<[Buffer, Buffer]>,
): KvStore {
  const map = new Map(pairs.map(([key, value]) => [key.toString('hex'), value]));
  return {
    kind,
    async get(key) {
      return map.get(Buffer.from(key).toString('hex'));
    },
    async *entries(options = {}) {
      for (const [key, value] of pairs) {
        if (options.prefix && !key.subarray(0, options.prefix.byteLength).equals(options.prefix))
          continue;
        if (options.start && Buffer.compare(key, options.start) < 0) continue;
        if (options.end && Buffer.compare(key, options.end) >= 0) continue;
        yield { key, value };
      }
    },
    async close() {},
  };
}
