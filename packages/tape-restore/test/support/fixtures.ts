import { cp, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedFixture, seededBytes } from '@x/test-utils';
import {
  DatastoreBuilder,
  type FixtureSnapshot,
  fixtureKey,
  fixtureSnapshotPath,
  type WrittenMediaSet,
  writeMediaSet,
} from '../../src/testing/index.js';

export const PACKAGE_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const MiB = 1024 * 1024;

/** Runny data (long runs of one byte): zstd makes it much smaller. */
export function runnyBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  const noise = seededBytes(4096, seed);
  let at = 0;
  for (let i = 0; at < length; i++) {
    const run = Math.min(length - at, 200 + ((noise[i % 4096] ?? 0) << 4));
    out.fill(noise[(i + 1) % 4096] ?? 0, at, at + run);
    at += run;
    const literal = Math.min(length - at, 40);
    const from = (i * 7) % 4000;
    noise.copy(out, at, from, from + literal);
    at += literal;
  }
  return out;
}

const image1 = seededBytes(3 * MiB, 1);
const image2 = Buffer.concat([image1.subarray(0, 2 * MiB), seededBytes(MiB, 2)]); // shares 2 chunks
const key = fixtureKey('fixture key');

/** The snapshots of the source datastore `store1`, in backup order. */
export const STORE1_SNAPSHOTS: FixtureSnapshot[] = [
  {
    type: 'vm',
    id: '100',
    time: '2024-01-01T00:00:00Z',
    archives: [
      { name: 'drive-scsi0.img.fidx', kind: 'fidx', data: image1, chunkSize: MiB },
      {
        name: 'qemu-server.conf.blob',
        kind: 'blob',
        data: Buffer.from('memory: 2048\ncores: 2\n'),
      },
    ],
    unprotected: { verify_state: { state: 'ok', upid: 'UPID:fixture' }, notes: 'first' },
  },
  {
    type: 'vm',
    id: '100',
    time: '2024-01-02T00:00:00Z',
    archives: [
      { name: 'drive-scsi0.img.fidx', kind: 'fidx', data: image2, chunkSize: MiB },
      {
        name: 'qemu-server.conf.blob',
        kind: 'blob',
        data: Buffer.from('memory: 4096\ncores: 2\n'),
      },
    ],
  },
  {
    namespace: ['prod'],
    type: 'ct',
    id: '200',
    time: '2024-01-03T00:00:00Z',
    archives: [
      {
        name: 'root.pxar.didx',
        kind: 'didx',
        chunks: [runnyBytes(300_000, 3), runnyBytes(500_000, 4), runnyBytes(123_457, 5)],
      },
      { name: 'pct.conf.blob', kind: 'blob', data: Buffer.from('arch: amd64\n') },
      // A large blob makes this snapshot archive several blocks long: cut at end of media.
      { name: 'catalog.pcat1.blob', kind: 'blob', data: seededBytes(900_000, 12) },
    ],
    clientLog: 'backup of ct 200 finished\n',
  },
  {
    namespace: ['prod', 'db'],
    type: 'vm',
    id: '300',
    time: '2024-01-04T00:00:00Z',
    key,
    archives: [
      {
        name: 'drive-virtio0.img.fidx',
        kind: 'fidx',
        data: Buffer.concat([seededBytes(256 * 1024, 6), runnyBytes(256 * 1024, 7)]),
        chunkSize: 256 * 1024,
      },
    ],
  },
  {
    type: 'host',
    id: 'web1',
    time: '2024-01-05T00:00:00Z',
    uncompressed: true,
    archives: [
      {
        name: 'etc.pxar.didx',
        kind: 'didx',
        chunks: [seededBytes(70_000, 8), runnyBytes(90_000, 9)],
      },
    ],
  },
];

export const STORE2_SNAPSHOTS: FixtureSnapshot[] = [
  {
    type: 'ct',
    id: '900',
    time: '2024-02-01T00:00:00Z',
    archives: [
      {
        name: 'root.pxar.didx',
        kind: 'didx',
        chunks: [runnyBytes(200_000, 10), image1.subarray(0, 100_000)],
      },
    ],
  },
];

export interface TapeFixture {
  readonly root: string;
  readonly store1: string;
  readonly store2: string;
  readonly driveDir: string;
  readonly statusDir: string;
  readonly setA: WrittenMediaSet;
  readonly setB: WrittenMediaSet;
}

/**
 * Two source datastores written to two media sets (pools `weekly` and `monthly`) on
 * one virtual drive, on tapes small enough that chunk archives get cut at end of
 * media. Cached under .fixtures/.
 */
export async function tapeFixture(): Promise<TapeFixture> {
  const recipe = 'tape-fixture v10';
  const root = await cachedFixture(PACKAGE_ROOT, 'media-sets', recipe, async (dir) => {
    const store1 = await new DatastoreBuilder(join(dir, 'store1')).init();
    for (const snapshot of STORE1_SNAPSHOTS) await store1.addSnapshot(snapshot);
    const store2 = await new DatastoreBuilder(join(dir, 'store2')).init();
    for (const snapshot of STORE2_SNAPSHOTS) await store2.addSnapshot(snapshot);
    const setA = await writeMediaSet({
      driveDir: join(dir, 'drive'),
      statusDir: join(dir, 'status'),
      pool: 'weekly',
      labelPrefix: 'WK',
      maxTapeSize: 3 * MiB,
      sources: [
        {
          store: 'store1',
          path: store1.path,
          snapshots: STORE1_SNAPSHOTS.map(fixtureSnapshotPath),
        },
        {
          store: 'store2',
          path: store2.path,
          snapshots: STORE2_SNAPSHOTS.map(fixtureSnapshotPath),
        },
      ],
    });
    const setB = await writeMediaSet({
      driveDir: join(dir, 'drive'),
      statusDir: join(dir, 'status'),
      pool: 'monthly',
      labelPrefix: 'MO',
      maxTapeSize: 64 * MiB,
      chunkOrder: 'digest',
      sources: [
        {
          store: 'store1',
          path: store1.path,
          snapshots: [fixtureSnapshotPath(STORE1_SNAPSHOTS[0] as FixtureSnapshot)],
        },
      ],
    });
    await (await import('node:fs/promises')).writeFile(
      join(dir, 'sets.json'),
      JSON.stringify({ setA, setB }, null, 2),
    );
  });
  const { setA, setB } = JSON.parse(await readFile(join(root, 'sets.json'), 'utf8')) as {
    setA: WrittenMediaSet;
    setB: WrittenMediaSet;
  };
  return {
    root,
    store1: join(root, 'store1'),
    store2: join(root, 'store2'),
    driveDir: join(root, 'drive'),
    statusDir: join(root, 'status'),
    setA,
    setB,
  };
}

/** A copy of the fixture's drive and status dirs (for tests that damage them). */
export async function copyOf(
  fixture: TapeFixture,
  into: string,
): Promise<{ driveDir: string; statusDir: string }> {
  const driveDir = join(into, 'drive');
  const statusDir = join(into, 'status');
  await cp(fixture.driveDir, driveDir, { recursive: true });
  await cp(fixture.statusDir, statusDir, { recursive: true });
  return { driveDir, statusDir };
}

/** An empty target datastore (only `.chunks`, no prefix directories). */
export async function emptyDatastore(path: string): Promise<string> {
  await mkdir(join(path, '.chunks'), { recursive: true });
  return path;
}

/** Every file under a directory (relative path -> bytes), skipping `.chunks`. */
export async function treeFiles(
  dir: string,
  skip = new Set(['.chunks', '.tmp', '.lock']),
): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (relative: string) => {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      if (relative === '' && skip.has(entry.name)) continue;
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) await walk(path);
      else out.set(path, await readFile(join(dir, path)));
    }
  };
  await walk('');
  return out;
}

/** The chunk files of a datastore: digest -> { size, mtimeMs }. */
export async function chunkFiles(
  dir: string,
): Promise<Map<string, { size: number; mtimeMs: number; bytes: Buffer }>> {
  const out = new Map<string, { size: number; mtimeMs: number; bytes: Buffer }>();
  const base = join(dir, '.chunks');
  for (const prefix of await readdir(base)) {
    for (const name of await readdir(join(base, prefix))) {
      if (name.startsWith('.')) continue;
      const path = join(base, prefix, name);
      const info = await stat(path);
      out.set(name, { size: info.size, mtimeMs: info.mtimeMs, bytes: await readFile(path) });
    }
  }
  return out;
}
