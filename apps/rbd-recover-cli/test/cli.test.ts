import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { filesEqual, makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cephFixture } from './support/fixture.js';
import { run } from './support/run-cli.js';

let temp: TempDir;
let fixture: Awaited<ReturnType<typeof cephFixture>>;

beforeAll(async () => {
  fixture = await cephFixture();
  temp = await makeTempDir('rbd-cli-');
  await writeFile(
    temp.file('hosts.txt'),
    `# both OSDs of the fixture\nlocal ${fixture.osd0}\nlocal ${fixture.osd1}\n`,
  );
  const database = await run(['database', '--hosts', 'hosts.txt'], temp.path);
  expect(database.stderr).toBe('');
  expect(database.code).toBe(0);
  expect(database.stdout).toContain('inventory: 51 objects from 2 of 2 OSDs');
});

afterAll(async () => {
  await temp?.remove();
});

describe('rbd-recover on the real fixture (local paths)', () => {
  it('list names the images as <pool>/<image>', async () => {
    const result = await run(['list'], temp.path);
    expect(result).toMatchObject({ code: 0, stdout: 'rbd/img_v1\nrbd/img_v2.a\n' });
    const json = await run(['list', '--json', '--pool', '1'], temp.path);
    expect(JSON.parse(json.stdout)).toEqual([
      { pool: 1, poolName: 'rbd', namespace: '', name: 'img_v1', format: 1, id: null },
      { pool: 1, poolName: 'rbd', namespace: '', name: 'img_v2.a', format: 2, id: '102e52f45f67' },
    ]);
  });

  it('lookup prints the original layout and JSON', async () => {
    const result = await run(['lookup', 'rbd/img_v2.a'], temp.path);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('prefix: rbd_data.102e52f45f67\n');
    expect(result.stdout).toContain('snapshot:\t5\ts2\t\t50331648\n');
    const json = JSON.parse((await run(['lookup', '1/img_v1@v1s1', '--json'], temp.path)).stdout);
    expect(json).toMatchObject({
      format: 1,
      prefix: 'rb.0.1034.6b8b4567',
      size: 16 << 20,
      snapshot: { name: 'v1s1', id: 6, size: 16 << 20 },
    });
  });

  it('recover writes the head equal to rbd export, mode 0600; an existing output is refused', async () => {
    const result = await run(['recover', 'rbd/img_v2.a', '-o', 'head.raw'], temp.path);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('complete: every object was read');
    expect(await filesEqual(temp.file('head.raw'), fixture.exportPath('img_v2.a'))).toBe(true);
    expect((await stat(temp.file('head.raw'))).mode & 0o777).toBe(0o600);
    const again = await run(['recover', 'rbd/img_v2.a', '-o', 'head.raw', '--json'], temp.path);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('use --force');
    expect(lastDocument(again.stdout)).toMatchObject({ code: 'EEXIST' });
  });

  it('recover --all-snapshots --format qcow2 holds every snapshot', async () => {
    const result = await run(
      ['recover', 'rbd/img_v1', '--all-snapshots', '--format', 'qcow2', '-o', 'v1.qcow2', '--json'],
      temp.path,
    );
    expect(result.code).toBe(0);
    const report = lastDocument(result.stdout);
    expect((report.states as Array<{ label: string }>).map((state) => state.label)).toEqual([
      'v1s1',
      'head',
    ]);
    await runPeerOk('qemu-img', [
      'convert',
      '-O',
      'raw',
      '-l',
      'snapshot.name=v1s1',
      temp.file('v1.qcow2'),
      temp.file('v1s1.raw'),
    ]);
    expect(await filesEqual(temp.file('v1s1.raw'), fixture.exportPath('img_v1@v1s1'))).toBe(true);
  });

  it('usage errors exit 2 with one line', async () => {
    for (const args of [
      ['recover', 'no-pool-here', '-o', 'x.raw'],
      ['lookup', 'rbd/img_v1', '--size', '1G'],
      ['list', '--pool-name', 'rbd'],
      ['recover', 'rbd/img_v1'],
    ]) {
      const result = await run(args, temp.path);
      expect(result.code, args.join(' ')).toBe(2);
    }
  });

  // Errors of the option parser end as the tool's own checks do (issue 14 item 16).
  it.each([
    [['list', '--bogus'], /unknown option '--bogus'/],
    [['lookup'], /missing required argument 'image'/],
  ])(
    'parser error %j: one line "rbd-recover: … (see --help)", exit 2, JSON with --json',
    async (args, message) => {
      const result = await run(args, temp.path);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^rbd-recover: [^\n]* \(see --help\)\n$/);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
      const json = await run([...args, '--json'], temp.path);
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stdout)).toMatchObject({
        error: 'UsageError',
        code: 'USAGE',
        message: expect.stringMatching(message),
      });
    },
  );

  it('its own usage errors are one line with (see --help)', async () => {
    const result = await run(['list', '--pool-name', 'rbd'], temp.path);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^rbd-recover: [^\n]* \(see --help\)\n$/);
  });

  it('an unknown image is NOT_FOUND, exit 1; no inventory says to run database', async () => {
    const missing = await run(['lookup', 'rbd/nope', '--json'], temp.path);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ code: 'NOT_FOUND' });
    const empty = await makeTempDir('rbd-cli-empty-');
    try {
      const none = await run(['list'], empty.path);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('rbd-recover database');
    } finally {
      await empty.remove();
    }
  });

  it('--version and --help', async () => {
    expect((await run(['--version'])).stdout.trim()).toBe('0.1.0');
    const help = await run(['recover', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    expect(join('a', 'b')).toBe('a/b');
  });
});

/** The result document after the JSON Lines progress events of a long command. */
function lastDocument(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n').filter((line) => !line.startsWith('{"event":"progress"'));
  return JSON.parse(lines.join('\n'));
}
