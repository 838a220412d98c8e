import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { makeTempDir, seededBytes, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOutputFile, withOutputFile } from '../src/index.js';
import { childScript, distEntry, MiB } from './support/files.js';

let scratch: TempDir;
beforeEach(async () => {
  scratch = await makeTempDir('blockio-output-');
});
afterEach(async () => {
  await scratch.remove();
});

const missing = { code: 'ENOENT' };

describe('createOutputFile', () => {
  it('writes under .partial and moves the file into place on commit', async () => {
    const path = scratch.file('out.img');
    const output = await createOutputFile(path, { size: 3 * MiB });
    expect(output.partialPath).toBe(`${path}.partial`);
    expect((await stat(output.partialPath)).size).toBe(3 * MiB);
    await expect(stat(path)).rejects.toMatchObject(missing);
    await output.device.write(MiB, Buffer.from('hello'));
    await output.commit();
    await expect(stat(output.partialPath)).rejects.toMatchObject(missing);
    const written = await readFile(path);
    expect(written.byteLength).toBe(3 * MiB);
    expect(written.subarray(MiB, MiB + 5).toString()).toBe('hello');
    await output.abort(); // after commit: nothing to do, the file stays
    expect((await stat(path)).size).toBe(3 * MiB);
    await expect(output.commit()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('runs beforeCommit hooks, in order, before the file appears under its name', async () => {
    const path = scratch.file('hooked.img');
    const output = await createOutputFile(path);
    const seen: string[] = [];
    output.beforeCommit(async () => {
      // A hook may still write: a format library flushing its tables.
      await output.device.write(0, Buffer.from('tables'));
      seen.push(
        `first, published: ${await stat(path).then(
          () => true,
          () => false,
        )}`,
      );
    });
    output.beforeCommit(async () => {
      seen.push('second');
    });
    await output.commit();
    expect(seen).toEqual(['first, published: false', 'second']);
    expect((await readFile(path)).toString()).toBe('tables');
  });

  it('a failing beforeCommit hook leaves the output open and unpublished', async () => {
    const path = scratch.file('failed-hook.img');
    const output = await createOutputFile(path);
    output.beforeCommit(async () => {
      throw new Error('flush failed');
    });
    await expect(output.commit()).rejects.toThrow('flush failed');
    await expect(stat(path)).rejects.toMatchObject(missing);
    await output.abort();
    await expect(stat(output.partialPath)).rejects.toMatchObject(missing);
  });

  it('refuses an existing target unless told to overwrite, leaving it untouched', async () => {
    const path = scratch.file('existing.img');
    await writeFile(path, 'precious');
    // A library error names the library option, not a CLI's flag.
    await expect(createOutputFile(path)).rejects.toMatchObject({
      code: 'EEXIST',
      path,
      message: 'output file already exists (pass overwrite: true to replace it)',
    });
    await expect(stat(`${path}.partial`)).rejects.toMatchObject(missing);
    expect(await readFile(path, 'utf8')).toBe('precious');

    const output = await createOutputFile(path, { overwrite: true });
    await output.device.write(0, Buffer.from('replacement'));
    // Until commit, the old file is still whole under its name.
    expect(await readFile(path, 'utf8')).toBe('precious');
    await output.commit();
    expect(await readFile(path, 'utf8')).toBe('replacement');
  });

  it('removes the partial file on abort and keeps the old target', async () => {
    const path = scratch.file('kept.img');
    await writeFile(path, 'old');
    const output = await createOutputFile(path, { overwrite: true, size: MiB });
    await output.device.write(0, Buffer.from('new'));
    await output.abort();
    await output.abort();
    await expect(stat(output.partialPath)).rejects.toMatchObject(missing);
    expect(await readFile(path, 'utf8')).toBe('old');
  });

  it('refuses a stale .partial from an earlier run unless overwriting', async () => {
    const path = scratch.file('again.img');
    await writeFile(`${path}.partial`, 'stale');
    await expect(createOutputFile(path)).rejects.toMatchObject({
      code: 'EEXIST',
      message: `a partial output from an earlier run exists at ${path}.partial; remove it or pass overwrite: true`,
    });
    expect(await readFile(`${path}.partial`, 'utf8')).toBe('stale');
    const output = await createOutputFile(path, { overwrite: true });
    expect((await stat(output.partialPath)).size).toBe(0);
    await output.commit();
    expect((await stat(path)).size).toBe(0);
  });

  it('does not replace a file that appeared under the name while writing', async () => {
    const path = scratch.file('race.img');
    const output = await createOutputFile(path);
    await output.device.write(0, Buffer.from('ours'));
    await writeFile(path, 'theirs');
    await expect(output.commit()).rejects.toMatchObject({ code: 'EEXIST', path });
    await output.abort();
    expect(await readFile(path, 'utf8')).toBe('theirs');
    await expect(stat(output.partialPath)).rejects.toMatchObject(missing);
  });

  it('refuses to write over something that is not a regular file', async () => {
    await mkdir(scratch.file('dir'));
    await expect(createOutputFile(scratch.file('dir'), { overwrite: true })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('withOutputFile commits on success and cleans up on failure', async () => {
    const good = scratch.file('good.img');
    const value = await withOutputFile(good, {}, async (output) => {
      await output.device.write(0, Buffer.from('done'));
      return 42;
    });
    expect(value).toBe(42);
    expect(await readFile(good, 'utf8')).toBe('done');

    const bad = scratch.file('bad.img');
    const failure = withOutputFile(bad, { size: MiB }, async () => {
      throw new Error('write failed');
    });
    await expect(failure).rejects.toThrow('write failed');
    await expect(stat(bad)).rejects.toMatchObject(missing);
    await expect(stat(`${bad}.partial`)).rejects.toMatchObject(missing);
  });

  it('withOutputFile takes its options optionally, as createOutputFile does', async () => {
    const path = scratch.file('plain.img');
    const value = await withOutputFile(path, async (output) => {
      await output.device.write(0, Buffer.from('plain'));
      return output.device.size;
    });
    expect(value).toBe(5);
    expect(await readFile(path, 'utf8')).toBe('plain');
    // The defaults are createOutputFile's: an existing file is refused, not replaced.
    await expect(withOutputFile(path, async () => 0)).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(withOutputFile(path, undefined, async () => 0)).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(await readFile(path, 'utf8')).toBe('plain');
  });
});

describe('a writer killed with SIGKILL mid-write', () => {
  it('leaves the old target byte for byte untouched', async () => {
    const target = scratch.file('target.img');
    const old = seededBytes(4 * MiB + 3, 99);
    await writeFile(target, old);

    const child = spawn(
      process.execPath,
      [childScript('write-forever.mjs'), distEntry(), target, String(16 * MiB)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
    });
    const exited = once(child, 'exit');
    const [announcement] = (await once(child.stdout, 'data')) as [Buffer];
    expect(announcement.toString()).toBe(`writing ${target}.partial\n`);
    // The replacement is really under way: its partial file already holds new bytes.
    expect((await stat(`${target}.partial`)).size).toBeGreaterThan(0);
    expect(child.kill('SIGKILL')).toBe(true);
    const [code, signal] = await exited;
    expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });

    expect((await readFile(target)).equals(old)).toBe(true);
    // The leftover partial is refused next time unless the user says to overwrite.
    await expect(createOutputFile(target)).rejects.toMatchObject({ code: 'EEXIST' });
  });
});
