import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cachedFixture } from '@x/test-utils';

export const PACKAGE_ROOT = resolve(import.meta.dirname, '..', '..');
export const FIXTURES = join(PACKAGE_ROOT, 'test', 'fixtures', 'sheepdog');
export const MiB = 1 << 20;
export const OBJECT_SIZE = 4 * MiB;

export const BACKUPS = [
  { name: 'alpha-snap0-to-snap1', from: 'snap0', to: 'snap1' },
  { name: 'alpha-snap1-to-snap2', from: 'snap1', to: 'snap2' },
  { name: 'alpha-snap2-to-snap2', from: 'snap2', to: 'snap2' },
] as const;

/** Records of each fixture as formats/sheepdog.md §6 lists them: [idx, offset, length]. */
export const EXPECTED_RECORDS: Record<string, Array<[number, number, number]>> = {
  'alpha-snap0-to-snap1': [
    [0, 0, 4194304],
    [1, 0, 1048576],
    [5, 1048576, 65536],
    [15, 4193792, 512],
  ],
  'alpha-snap1-to-snap2': [
    [0, 0, 2048],
    [1, 2097152, 4096],
    [3, 8192, 1024],
    [9, 4193792, 512],
    [10, 0, 512],
    [15, 4193792, 512],
  ],
  'alpha-snap2-to-snap2': [],
};

function sums(file: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSync(join(FIXTURES, file), 'utf8').split('\n')) {
    const [hash, name] = line.trim().split(/\s+/);
    if (hash && name) map.set(name, hash);
  }
  return map;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface SheepdogFixtures {
  directory: string;
  backup(name: string): string;
  raw(snapshot: string): string;
  inode(vid: string): Buffer;
  sha256Uncompressed(name: string): string;
}

/**
 * The real dog 1.0.1 fixtures, decompressed once into .fixtures/ (raw images written
 * sparse) and checked against the SHA-256 sums they were published with.
 */
export async function sheepdogFixtures(): Promise<SheepdogFixtures> {
  const stored = sums('SHA256SUMS');
  const uncompressed = sums('SHA256SUMS.uncompressed');
  const directory = await cachedFixture(PACKAGE_ROOT, 'sheepdog', 'v1', async (dir) => {
    for (const { name } of BACKUPS) {
      const bytes = gunzipSync(readFileSync(join(FIXTURES, `${name}.backup.gz`)));
      const expected = stored.get(`${name}.backup`);
      if (sha256(bytes) !== expected) throw new Error(`${name}.backup: checksum mismatch`);
      await writeSparse(join(dir, `${name}.backup`), bytes);
    }
    for (const snapshot of ['snap0', 'snap1', 'snap2']) {
      const gz = readFileSync(join(FIXTURES, `alpha-${snapshot}.raw.gz`));
      if (sha256(gz) !== stored.get(`alpha-${snapshot}.raw.gz`)) {
        throw new Error(`alpha-${snapshot}.raw.gz: checksum mismatch`);
      }
      const bytes = gunzipSync(gz);
      if (sha256(bytes) !== uncompressed.get(`alpha-${snapshot}.raw`)) {
        throw new Error(`alpha-${snapshot}.raw: checksum mismatch`);
      }
      await writeSparse(join(dir, `alpha-${snapshot}.raw`), bytes);
    }
  });
  return {
    directory,
    backup: (name) => join(directory, `${name}.backup`),
    raw: (snapshot) => join(directory, `alpha-${snapshot}.raw`),
    inode: (vid) => readFileSync(join(FIXTURES, 'inodes', `inode-${vid}.head`)),
    sha256Uncompressed: (name) => uncompressed.get(name) ?? '',
  };
}

/** Writes `bytes` leaving all-zero 64 KiB blocks as holes. */
async function writeSparse(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, 'w', 0o644);
  try {
    const block = 64 * 1024;
    for (let offset = 0; offset < bytes.byteLength; offset += block) {
      const chunk = bytes.subarray(offset, offset + block);
      if (chunk.some((byte) => byte !== 0)) await handle.write(chunk, 0, chunk.byteLength, offset);
    }
    await handle.truncate(bytes.byteLength);
  } finally {
    await handle.close();
  }
}
