import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliFixture, cliFixture, SNAPSHOTS, tapeRestore } from './support/cli.js';

let fixture: CliFixture;
let temp: TempDir;
let counter = 0;
beforeAll(async () => {
  fixture = await cliFixture();
  temp = await makeTempDir('tape-restore-cli-');
});
afterAll(() => temp.remove());

async function target(): Promise<string> {
  const path = join(temp.path, `target-${counter++}`);
  await mkdir(join(path, '.chunks'), { recursive: true });
  return path;
}

const common = () => [
  '--drive',
  fixture.driveDir,
  '--status-dir',
  fixture.statusDir,
  '--media-set',
  fixture.set.mediaSetUuid,
];

describe('tape-restore restore', () => {
  it('restores a snapshot, logs like a PBS task and prints a JSON summary', async () => {
    const path = await target();
    const result = await tapeRestore(
      'restore',
      ...common(),
      '--store',
      'target',
      '--datastore',
      `target=${path}`,
      '--snapshot',
      `store1:${SNAPSHOTS[0]}`,
      '--json',
    );
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary.restored).toEqual([`store1:${SNAPSHOTS[0]}`]);
    expect(summary.chunksRestored).toBe(4);
    expect(summary.tape.tapeFilesOpened).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/^File \d+: chunk archive for datastore 'store1'$/m);
    expect(result.stderr).toMatch(/^restored \d+ bytes \([\d.]+ MB\/s\)$/m);
    expect(await readdir(join(path, SNAPSHOTS[0] as string))).toContain('index.json.blob');
  });

  it('--plan --json prints the plan and changes nothing', async () => {
    const path = await target();
    const result = await tapeRestore(
      'restore',
      ...common(),
      '--store',
      'target',
      '--datastore',
      `target=${path}`,
      '--snapshot',
      `store1:${SNAPSHOTS[1]}`,
      '--plan',
      '--json',
    );
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.restore).toHaveLength(1);
    expect(plan.totals.chunks).toBe(2);
    expect(plan.loadOrder.length).toBeGreaterThan(0);
    expect(await readdir(path)).toEqual(['.chunks']);
    const human = await tapeRestore(
      'restore',
      ...common(),
      '--store',
      'target',
      '--datastore',
      `target=${path}`,
      '--snapshot',
      `store1:${SNAPSHOTS[1]}`,
      '--plan',
    );
    expect(human.stdout).toMatch(/^tapes to load, in order: /m);
  });

  it('exits 1 when a selected snapshot could not be restored', async () => {
    const path = await target();
    const result = await tapeRestore(
      'restore',
      ...common(),
      '--store',
      'target',
      '--datastore',
      `target=${path}`,
      '--snapshot',
      'store1:vm/999/2024-01-01T00:00:00Z',
      '--json',
    );
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).skipped[0].snapshot).toBe(
      'store1:vm/999/2024-01-01T00:00:00Z',
    );
    expect(result.stderr).toContain('did not find snapshot');
  });

  it('restores a whole media set without --snapshot', async () => {
    const path = await target();
    const catalogs = join(temp.path, `catalogs-${counter++}`);
    await mkdir(catalogs);
    const result = await tapeRestore(
      'restore',
      ...common(),
      '--store',
      'target',
      '--datastore',
      `target=${path}`,
      '--catalog-dir',
      catalogs,
      '--json',
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).snapshotsRestored).toEqual(
      SNAPSHOTS.map((s) => `store1:${s}`),
    );
    expect((await readdir(catalogs)).length).toBe(fixture.set.tapes.length);
  });

  it('names the tape that is not in the drive, as one line and as JSON', async () => {
    const drive = join(temp.path, `drive-${counter++}`);
    await cp(fixture.driveDir, drive, { recursive: true });
    const label = fixture.set.tapes[0]?.label as string;
    await rm(join(drive, `tape-${label}.json`));
    const path = await target();
    const args = [
      'restore',
      '--drive',
      drive,
      '--status-dir',
      fixture.statusDir,
      '--media-set',
      fixture.set.mediaSetUuid,
      '--store',
      'target',
      '--datastore',
      `target=${path}`,
      '--snapshot',
      `store1:${SNAPSHOTS[0]}`,
    ];
    const result = await tapeRestore(...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`^tape-restore: error: tape ${label}: .*tape ${label} is not in the drive`, 'm'),
    );
    const json = await tapeRestore(...args, '--json');
    const error = JSON.parse(json.stdout);
    expect(error).toMatchObject({ code: 'MEDIA_NOT_FOUND', tape: label });
  });
});

describe('usage errors', () => {
  it.each([
    [['restore', '--drive', 'x']],
    [
      [
        'restore',
        '--drive',
        'x',
        '--status-dir',
        'y',
        '--media-set',
        'z',
        '--store',
        't',
        '--datastore',
        'nopath',
      ],
    ],
    [['verify-media']],
    [['frobnicate']],
  ])('%j: one line, exit 2', async (args) => {
    const result = await tapeRestore(...args);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr.trim()).toMatch(/^tape-restore: .*\(see --help\)$/);
  });

  it('with --json ends with one JSON object', async () => {
    const result = await tapeRestore('restore', '--drive', 'x', '--json');
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'USAGE' });
  });

  it('--version and -V', async () => {
    expect((await tapeRestore('--version')).stdout.trim()).toBe('0.1.0');
    expect((await tapeRestore('-V')).stdout.trim()).toBe('0.1.0');
  });
});

describe('verify-media and media', () => {
  it('verify-media exits 0 on a sound tape and 1 on a damaged one', async () => {
    const label = fixture.set.tapes[0]?.label as string;
    const sound = await tapeRestore(
      'verify-media',
      label,
      '--drive',
      fixture.driveDir,
      '--status-dir',
      fixture.statusDir,
      '--json',
    );
    expect(sound.code).toBe(0);
    expect(JSON.parse(sound.stdout).sound).toBe(true);
    const drive = join(temp.path, `damaged-${counter++}`);
    await cp(fixture.driveDir, drive, { recursive: true });
    const { open } = await import('node:fs/promises');
    const handle = await open(join(drive, `tapefile-2-${label}.json`), 'r+');
    await handle.write(Buffer.from([0xff, 0xff]), 0, 2, 262144 + 5000);
    await handle.close();
    const damaged = await tapeRestore('verify-media', label, '--drive', drive, '--json');
    expect(damaged.code).toBe(1);
    expect(JSON.parse(damaged.stdout).damage[0]).toMatchObject({ fileNumber: 2, code: 'BAD_CRC' });
  });

  it('media list and media catalog', async () => {
    const list = await tapeRestore(
      'media',
      'list',
      '--status-dir',
      fixture.statusDir,
      '--drive',
      fixture.driveDir,
    );
    expect(list.code).toBe(0);
    for (const tape of fixture.set.tapes) expect(list.stdout).toContain(tape.label);
    const json = JSON.parse(
      (await tapeRestore('media', 'list', '--status-dir', fixture.statusDir, '--json')).stdout,
    );
    expect(json.map((m: { label: string }) => m.label)).toEqual(
      fixture.set.tapes.map((t) => t.label),
    );
    const catalog = await tapeRestore(
      'media',
      'catalog',
      fixture.set.tapes.at(-1)?.label as string,
      '--status-dir',
      fixture.statusDir,
    );
    expect(catalog.stdout).toMatch(
      /^File \d+: snapshot archive store1:ns\/prod\/ct\/200\/2024-01-02T00:00:00Z$/m,
    );
  });
});
