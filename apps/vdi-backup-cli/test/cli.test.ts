import { createHash } from 'node:crypto';
import { copyFile, link, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cachedFixture, makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ROOT, resultJson, vdiBackup } from './support/cli.js';

// The real dog 1.0.1 fixtures, as the library's tests decompress them.
const FIXTURES = resolve(
  APP_ROOT,
  '..',
  '..',
  'packages',
  'vdi-backup',
  'test',
  'fixtures',
  'sheepdog',
);

async function fixtures() {
  const { gunzipSync } = await import('node:zlib');
  return cachedFixture(APP_ROOT, 'sheepdog', 'sparse v1', async (dir) => {
    for (const name of ['alpha-snap0-to-snap1.backup', 'alpha-snap1-to-snap2.backup']) {
      await writeFile(join(dir, name), gunzipSync(await readFile(join(FIXTURES, `${name}.gz`))));
    }
    for (const snap of ['snap0', 'snap1', 'snap2']) {
      const raw = gunzipSync(await readFile(join(FIXTURES, `alpha-${snap}.raw.gz`)));
      // Sparse, as dog's snapshots are: all-zero 64 KiB blocks stay holes.
      const handle = await open(join(dir, `alpha-${snap}.raw`), 'w');
      for (let at = 0; at < raw.byteLength; at += 65536) {
        const block = raw.subarray(at, at + 65536);
        if (block.some((byte) => byte !== 0)) await handle.write(block, 0, block.byteLength, at);
      }
      await handle.truncate(raw.byteLength);
      await handle.close();
    }
  });
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('vdi-backup CLI', () => {
  let dir: string;
  let temp: TempDir;
  beforeAll(async () => {
    dir = await fixtures();
    temp = await makeTempDir('vdi-cli-');
  });
  afterAll(() => temp.remove());
  const raw = (snap: string) => join(dir, `alpha-${snap}.raw`);

  it('create -F a.raw -s b.raw writes what dog wrote, to a file and to stdout', async () => {
    const output = temp.file('snap1-2.backup');
    const toFile = await vdiBackup([
      'create',
      '-F',
      raw('snap1'),
      '-s',
      raw('snap2'),
      '--object-size',
      '4M',
      '-o',
      output,
    ]);
    expect(toFile.code).toBe(0);
    const expected = await readFile(join(dir, 'alpha-snap1-to-snap2.backup'));
    expect((await readFile(output)).equals(expected)).toBe(true);
    expect(toFile.stdout.toString()).toContain('6 records');
    const toStdout = await vdiBackup(['create', '-F', raw('snap1'), '-s', raw('snap2')]);
    expect(toStdout.code).toBe(0);
    expect(toStdout.stdout.equals(expected)).toBe(true);
    expect(toStdout.stderr).toContain('6 records');
  });

  it('create --json summarises what was read, skipped and written', async () => {
    const output = temp.file('json.backup');
    const result = await vdiBackup([
      'create',
      '-F',
      raw('snap0'),
      '-s',
      raw('snap1'),
      '-o',
      output,
      '--json',
    ]);
    expect(result.code).toBe(0);
    const summary = resultJson(result.stdout);
    expect(summary).toMatchObject({
      command: 'create',
      objects: 16,
      records: 4,
      'objects-skipped-unallocated': 12,
      'bytes-written': 5309016,
    });
    expect((summary['bytes-read'] as number) + (summary['bytes-skipped'] as number)).toBe(
      2 * 64 * 2 ** 20,
    );
  });

  it('restore reads standard input and writes the "to" image', async () => {
    const output = temp.file('restored.raw');
    const stream = await readFile(join(dir, 'alpha-snap0-to-snap1.backup'));
    const result = await vdiBackup(['restore', '-s', raw('snap0'), output, '--json'], stream);
    expect(result.code).toBe(0);
    expect(resultJson(result.stdout)).toMatchObject({ records: 4, target: 'raw' });
    expect(sha(await readFile(output))).toBe(sha(await readFile(raw('snap1'))));
    const again = await vdiBackup(['restore', '-s', raw('snap0'), output], stream);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--force/);
  });

  it('-p takes no value: the argument after it is still the output (issue 14 item 6)', async () => {
    const output = temp.file('restored-p.raw');
    const stream = await readFile(join(dir, 'alpha-snap0-to-snap1.backup'));
    const result = await vdiBackup(['restore', '-s', raw('snap0'), '-p', output], stream);
    expect(result.code).toBe(0);
    expect(sha(await readFile(output))).toBe(sha(await readFile(raw('snap1'))));
    const mode = await vdiBackup(['restore', '-s', raw('snap0'), '--progress', 'bogus', output]);
    expect(mode.code).toBe(2);
  });

  it('a bad stream leaves no output, exit 1, with a JSON error naming the offset', async () => {
    const stream = await readFile(join(dir, 'alpha-snap1-to-snap2.backup'));
    const before = await readdir(temp.path);
    const output = temp.file('never.raw');
    const cut = await vdiBackup(
      ['restore', '-s', raw('snap1'), output, '--json'],
      stream.subarray(0, 5000),
    );
    expect(cut.code).toBe(1);
    const error = resultJson(cut.stdout);
    expect(error).toMatchObject({ code: 'TRUNCATED', offset: 5000 });
    expect(await readdir(temp.path)).toEqual(before);
  });

  it('merge, inspect and verify', async () => {
    const merged = temp.file('merged.backup');
    const merge = await vdiBackup([
      'merge',
      join(dir, 'alpha-snap0-to-snap1.backup'),
      join(dir, 'alpha-snap1-to-snap2.backup'),
      '-o',
      merged,
    ]);
    expect(merge.code).toBe(0);
    const inspect = await vdiBackup(['inspect', merged, '--json', '--records']);
    expect(inspect.code).toBe(0);
    const description = resultJson(inspect.stdout);
    expect(description['changed-objects']).toEqual([
      [0, 1],
      [3, 3],
      [5, 5],
      [9, 10],
      [15, 15],
    ]);
    expect((description.records as unknown[])[0]).toMatchObject({
      idx: 0,
      offset: 0,
      'stream-offset': 8,
    });
    const restored = temp.file('merged.raw');
    expect((await vdiBackup(['restore', '-s', raw('snap0'), restored, '-i', merged])).code).toBe(0);
    expect(sha(await readFile(restored))).toBe(sha(await readFile(raw('snap2'))));
    expect((await vdiBackup(['verify', merged, '--size', '64M'])).code).toBe(0);
    const tooSmall = await vdiBackup(['verify', merged, '--size', '60M', '--object-size', '4M']);
    expect(tooSmall.code).toBe(1);
    expect(tooSmall.stderr).toMatch(/TOO_LARGE|past its/);
  });

  it.each([
    [['create', '-F', 'a.raw'], /-F <from> and -s <to>/],
    [['create', '-F', 'a.raw', '-s', 'b.raw', '--object-size', '3M', '-o', 'x'], /--object-size/],
    [['create', '-F', 'a.raw', '-s', 'b.raw', '--json'], /--json needs -o FILE/],
    [['merge', 'a.backup', '-o', 'out.backup'], /at least two/],
    [['restore', 'out.raw'], /required option/],
    [['frobnicate'], /unknown command/],
  ])('usage error %j exits 2', async (args, message) => {
    const result = await vdiBackup(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  // Errors of the option parser end as the tools' own checks do (issue 14 items 9, 10).
  it.each([
    [['create', '-F', 'a', '--bogus'], /unknown option '--bogus'/],
    [['merge', 'a.backup', 'b.backup'], /required option '-o, --output <file>' not specified/],
    [['inspect'], /missing required argument 'file'/],
    [
      ['create', '-F', 'a', '-s', 'b', 'c.qcow2', '--backing', 'maybe', '-o', 'x'],
      /'maybe' is invalid/,
    ],
  ])(
    'parser error %j: one line "vdi-backup: … (see --help)", exit 2, JSON with --json',
    async (args, message) => {
      const result = await vdiBackup(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^vdi-backup: [^\n]* \(see --help\)\n$/);
      expect(result.stderr).toMatch(message);
      expect(result.stdout.toString()).toBe('');
      const json = await vdiBackup([...args, '--json']);
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stdout.toString())).toMatchObject({
        error: 'UsageError',
        code: 'USAGE',
        message: expect.stringMatching(message),
      });
    },
  );

  it('refuses an output that is the same file as an input, through any name (SAME_FILE)', async () => {
    const image = temp.file('same-b.raw');
    await copyFile(raw('snap2'), image);
    const alias = temp.file('same-b-link.raw');
    await link(image, alias);
    const before = sha(await readFile(image));
    const create = await vdiBackup([
      'create',
      '-F',
      raw('snap1'),
      '-s',
      image,
      '-o',
      alias,
      '--force',
      '--json',
    ]);
    expect(create.code).toBe(1);
    expect(resultJson(create.stdout)).toMatchObject({ code: 'SAME_FILE', path: alias });

    const stream = temp.file('same.backup');
    await copyFile(join(dir, 'alpha-snap1-to-snap2.backup'), stream);
    const restore = await vdiBackup([
      'restore',
      '-s',
      image,
      alias,
      '-i',
      temp.file('same.backup'),
      '--force',
      '--json',
    ]);
    expect(restore.code).toBe(1);
    expect(resultJson(restore.stdout)).toMatchObject({ code: 'SAME_FILE' });
    const restoreOverStream = await vdiBackup([
      'restore',
      '-s',
      raw('snap1'),
      stream,
      '-i',
      stream,
      '--force',
      '--json',
    ]);
    expect(restoreOverStream.code).toBe(1);
    expect(resultJson(restoreOverStream.stdout)).toMatchObject({ code: 'SAME_FILE' });
    expect(sha(await readFile(image))).toBe(before);

    const streamAlias = temp.file('same-link.backup');
    await link(stream, streamAlias);
    const streamBefore = sha(await readFile(stream));
    const merge = await vdiBackup([
      'merge',
      join(dir, 'alpha-snap0-to-snap1.backup'),
      stream,
      '-o',
      streamAlias,
      '--force',
      '--json',
    ]);
    expect(merge.code).toBe(1);
    expect(resultJson(merge.stdout)).toMatchObject({ code: 'SAME_FILE', path: streamAlias });
    expect(sha(await readFile(stream))).toBe(streamBefore);
  });

  it('--version and --help', async () => {
    expect((await vdiBackup(['--version'])).stdout.toString().trim()).toBe('0.1.0');
    const short = await vdiBackup(['-V']);
    expect(short.code).toBe(0);
    expect(short.stdout.toString()).toBe('0.1.0\n');
    const help = await vdiBackup(['create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toContain('Examples:');
  });
});
