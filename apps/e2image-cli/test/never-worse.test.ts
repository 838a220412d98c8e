// Issue 14, as a new user meets it: x-e2image never makes things worse.
import { execFileSync } from 'node:child_process';
import { copyFile, link, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildFixture,
  type Fixture,
  MATRIX,
} from '../../../packages/e2image/test/support/fixtures.js';
import { run } from './support/run-cli.js';

let temp: TempDir;
let fixture: Fixture;
beforeAll(async () => {
  temp = await makeTempDir('e2image-cli-never-worse-');
  fixture = await buildFixture(
    MATRIX.find((recipe) => recipe.name === 'ext4-meta_bg') as (typeof MATRIX)[number],
  );
});
afterAll(async () => {
  await temp.remove();
});

describe('an output that is the source', () => {
  it.each([
    ['-r', 'same path'],
    ['-Q', 'same path'],
    ['-ra', 'symbolic link'],
    ['-r', 'hard link'],
  ])('x-e2image %s (%s) is refused and the source is untouched', async (mode, how) => {
    const source = temp.file(`s${mode}-${how.replace(' ', '-')}.img`);
    await copyFile(fixture.image, source);
    const output =
      how === 'symbolic link' ? `${source}.link` : how === 'hard link' ? `${source}.hard` : source;
    if (how === 'symbolic link') await symlink(source, output);
    if (how === 'hard link') await link(source, output);
    const result = await run([mode, source, output]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is the same file as the input');
    expect(result.stderr).toContain('[SAME_FILE]');
    expect(await filesEqual(source, fixture.image)).toBe(true);
  });

  it('the in-place move (-ra -O with one file) still works', async () => {
    const file = temp.file('move.img');
    await copyFile(fixture.image, file);
    const result = await run(['-ra', '-O', '1048576', file]);
    expect(result.code, result.stderr).toBe(0);
    const moved = temp.file('moved-fs.img');
    execFileSync('dd', [`if=${file}`, `of=${moved}`, 'bs=1M', 'skip=1', 'status=none']);
    await runPeerOk('e2fsck', ['-fn', moved]);
  });
});

describe('outputs', () => {
  it('-ra (every file’s contents) creates its output 0600, as e2image does', async () => {
    const umask = process.umask(0o022);
    try {
      for (const mode of ['-ra', '-Q', '']) {
        const output = temp.file(`private${mode}.img`);
        const result = await run([...(mode ? [mode] : []), fixture.image, output]);
        expect(result.code, result.stderr).toBe(0);
        expect((await stat(output)).mode & 0o777).toBe(0o600);
      }
    } finally {
      process.umask(umask);
    }
  });

  it('errors name the output given, not its .partial, and end with [CODE]', async () => {
    const output = temp.file('nodir/x.raw');
    const result = await run(['-r', fixture.image, output]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `x-e2image: error: ${output}: cannot open for writing: no such file or directory [ENOENT]\n`,
    );
  });

  it('a denied backing file ends with [BACKING_DENIED]', async () => {
    const base = temp.file('base.qcow2');
    const overlay = temp.file('overlay.qcow2');
    await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', fixture.image, base]);
    await runPeerOk('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      base,
      '-F',
      'qcow2',
      overlay,
    ]);
    const result = await run(['-r', '--backing', 'deny', overlay, temp.file('denied.raw')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\[BACKING_DENIED\]\n$/);
  });

  it('-p into a log file: progress lines without escape codes, the result on a line of its own', async () => {
    const result = await run(['-r', '-p', fixture.image, temp.file('logged.raw')]);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('\x1b');
    expect(result.stderr).not.toContain('\r');
    expect(result.stderr).toMatch(/(^|\n)x-e2image: raw image of .* written\), [\d.]+ s\n$/);
  });
});

describe('sources that are not files or block devices', () => {
  it('/dev/zero and a FIFO are refused for what they are', async () => {
    const zero = await run(['-r', '/dev/zero', temp.file('zero.raw')]);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain('/dev/zero: is a character device');
    const fifo = temp.file('fifo');
    execFileSync('mkfifo', [fifo]);
    const piped = await run(['-r', fifo, temp.file('fifo.raw')]);
    expect(piped.code).toBe(1);
    expect(piped.stderr).toContain('is a pipe (FIFO)');
  });
});

describe('usage errors caught by the option parser', () => {
  it('-Z: one line, exit 2; with --json a JSON object', async () => {
    const result = await run(['-Z', fixture.image, temp.file('z.raw')]);
    expect(result).toMatchObject({
      code: 2,
      stderr: "x-e2image: unknown option '-Z' (see --help)\n",
    });
    const json = await run(['-Z', '--json', fixture.image, temp.file('z.raw')]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ code: 'USAGE' });
  });

  it('--version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await run([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout.toString()).toMatch(/^\d+\.\d+\.\d+\n$/);
    }
  });

  it('the bin answers a lone -V itself with what the full parser says: the package version', async () => {
    const { version } = JSON.parse(
      await readFile(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    // A second flag takes the bin past its fast path, into commander.
    for (const args of [['-V'], ['--version'], ['-V', '-V']]) {
      const result = await run(args);
      expect(result.code).toBe(0);
      expect(result.stdout.toString()).toBe(`${version}\n`);
    }
  });
});

describe('one rule with the other CLIs (issue 14 item 16)', () => {
  it('an existing output is refused unless --force, before any work', async () => {
    for (const mode of ['-r', '-Q', '']) {
      const output = temp.file(`exists${mode}.img`);
      await writeFile(output, 'keep me');
      const refused = await run([...(mode ? [mode] : []), fixture.image, output]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('output file already exists (use --force to replace it)');
      expect(await readFile(output, 'utf8')).toBe('keep me');
      const forced = await run([...(mode ? [mode] : []), '--force', fixture.image, output]);
      expect(forced.code, forced.stderr).toBe(0);
      expect(await readFile(output, 'utf8')).not.toBe('keep me');
    }
    const raw = temp.file('exists-r.img');
    expect(await filesEqual(raw, fixture.peerRaw)).toBe(true);
  });

  it('-c refreshes an existing output in place without --force', async () => {
    const output = temp.file('clone.raw');
    expect((await run(['-r', fixture.image, output])).code).toBe(0);
    const again = await run(['-rc', fixture.image, output]);
    expect(again.code, again.stderr).toBe(0);
    expect(await filesEqual(output, fixture.peerRaw)).toBe(true);
  });

  it('follows a QCOW2 source’s backing file by default, as qemu-img and qcow2 do', async () => {
    const base = temp.file('chain-base.qcow2');
    const overlay = temp.file('chain-overlay.qcow2');
    await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', fixture.image, base]);
    await runPeerOk('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      base,
      '-F',
      'qcow2',
      overlay,
    ]);
    const output = temp.file('chain.raw');
    // -r alone converts the whole QCOW2 image: through the overlay, the base's bytes.
    const result = await run(['-r', overlay, output]);
    expect(result.code, result.stderr).toBe(0);
    expect(await filesEqual(output, fixture.image)).toBe(true);
  });
});

describe('an output that is a directory', () => {
  it('says so, without naming an option that does not exist', async () => {
    const directory = temp.file('a-directory');
    await mkdir(directory);
    const result = await run(['-r', '--force', fixture.image, directory]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${directory}: the output exists and is a directory`);
    expect(result.stderr).not.toContain('device option');
  });
});
