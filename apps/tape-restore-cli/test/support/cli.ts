import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatastoreBuilder, type WrittenMediaSet, writeMediaSet } from '@x/tape-restore/testing';
import { type BinResult, cachedFixture, runBin, seededBytes } from '@x/test-utils';

export const APP_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const BIN = join(APP_ROOT, 'bin', 'tape-restore.js');

export type CliResult = BinResult;

/** Runs the built `tape-restore` bin as a child process. */
export function tapeRestore(...args: string[]): Promise<CliResult> {
  return runBin(BIN, args);
}

export interface CliFixture {
  readonly store1: string;
  readonly driveDir: string;
  readonly statusDir: string;
  readonly set: WrittenMediaSet;
}

export const SNAPSHOTS = ['vm/100/2024-01-01T00:00:00Z', 'ns/prod/ct/200/2024-01-02T00:00:00Z'];

/** A datastore of two snapshots on a media set of two small virtual tapes (cached). */
export async function cliFixture(): Promise<CliFixture> {
  const root = await cachedFixture(APP_ROOT, 'media-set', 'cli fixture v1', async (dir) => {
    const store = await new DatastoreBuilder(join(dir, 'store1')).init();
    await store.addSnapshot({
      type: 'vm',
      id: '100',
      time: '2024-01-01T00:00:00Z',
      archives: [
        {
          name: 'drive-scsi0.img.fidx',
          kind: 'fidx',
          data: seededBytes(2 * 1024 * 1024, 1),
          chunkSize: 512 * 1024,
        },
      ],
    });
    await store.addSnapshot({
      namespace: ['prod'],
      type: 'ct',
      id: '200',
      time: '2024-01-02T00:00:00Z',
      archives: [
        {
          name: 'root.pxar.didx',
          kind: 'didx',
          chunks: [Buffer.alloc(100_000, 1), seededBytes(50_000, 2)],
        },
      ],
    });
    const set = await writeMediaSet({
      driveDir: join(dir, 'drive'),
      statusDir: join(dir, 'status'),
      pool: 'weekly',
      labelPrefix: 'CLI',
      maxTapeSize: 2 * 1024 * 1024,
      sources: [{ store: 'store1', path: store.path, snapshots: SNAPSHOTS }],
    });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'set.json'), JSON.stringify(set));
  });
  return {
    store1: join(root, 'store1'),
    driveDir: join(root, 'drive'),
    statusDir: join(root, 'status'),
    set: JSON.parse(await readFile(join(root, 'set.json'), 'utf8')),
  };
}
