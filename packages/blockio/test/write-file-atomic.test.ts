import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { makeTempDir, seededBytes, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockIoError, writeFileAtomic } from '../src/index.js';

let scratch: TempDir;
beforeEach(async () => {
  scratch = await makeTempDir('blockio-atomic-');
});
afterEach(async () => {
  await scratch.remove();
});

const failureOf = (work: Promise<unknown>) =>
  work.then(
    () => undefined,
    (error) => error,
  );

describe('writeFileAtomic', () => {
  it('writes a new file whole, leaving nothing else behind', async () => {
    const path = scratch.file('chunk');
    const data = seededBytes(5000, 1);
    expect(await writeFileAtomic(path, data, { ifExists: 'fail' })).toBe('written');
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(await readdir(scratch.path)).toEqual(['chunk']);
    expect(
      await writeFileAtomic(scratch.file('note'), 'text', { ifExists: 'fail', sync: false }),
    ).toBe('written');
    expect(await readFile(scratch.file('note'), 'utf8')).toBe('text');
    expect(
      await writeFileAtomic(scratch.file('empty'), new Uint8Array(0), { ifExists: 'fail' }),
    ).toBe('written');
    expect((await readFile(scratch.file('empty'))).byteLength).toBe(0);
  });

  it('fail: refuses an existing file with EEXIST naming it and leaves it untouched', async () => {
    const path = scratch.file('index.json');
    await writeFile(path, 'old');
    const error = await failureOf(writeFileAtomic(path, 'new', { ifExists: 'fail' }));
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({
      code: 'EEXIST',
      path,
      message: "file already exists (pass ifExists: 'replace' to replace it, or 'keep' to keep it)",
    });
    expect(await readFile(path, 'utf8')).toBe('old');
    expect(await readdir(scratch.path)).toEqual(['index.json']);
  });

  it('replace: replaces an existing file; keep: leaves it and says so', async () => {
    const path = scratch.file('blob');
    await writeFile(path, 'old');
    expect(await writeFileAtomic(path, 'new', { ifExists: 'replace' })).toBe('written');
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await writeFileAtomic(path, 'other', { ifExists: 'keep' })).toBe('kept');
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(scratch.path)).toEqual(['blob']);
  });

  it('names the path in typed errors: missing directory, a directory in the way', async () => {
    const missing = scratch.file('no/such/dir/chunk');
    await expect(writeFileAtomic(missing, 'x', { ifExists: 'fail' })).rejects.toMatchObject({
      code: 'ENOENT',
      path: missing,
    });
    const directory = scratch.file('dir');
    await mkdir(directory);
    await expect(writeFileAtomic(directory, 'x', { ifExists: 'replace' })).rejects.toMatchObject({
      code: 'EISDIR',
      path: directory,
    });
    expect(await readdir(scratch.path)).toEqual(['dir']);
    expect(await readdir(directory)).toEqual([]);
  });

  it('many concurrent writers of one path with keep: one writes, the rest keep, no temporaries', async () => {
    const path = scratch.file('0123abcd');
    const data = seededBytes(64 * 1024, 2);
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, () => writeFileAtomic(path, data, { ifExists: 'keep' })),
    );
    expect(outcomes.filter((outcome) => outcome === 'written')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'kept')).toHaveLength(39);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(await readdir(scratch.path)).toEqual(['0123abcd']);
  });

  it('concurrent writers with fail: exactly one succeeds; with replace: one whole version wins', async () => {
    const path = scratch.file('manifest');
    const versions = Array.from({ length: 20 }, (_, index) => seededBytes(32 * 1024, 100 + index));
    const failed = await Promise.all(
      versions.map((data) =>
        writeFileAtomic(path, data, { ifExists: 'fail' }).catch((error) => error),
      ),
    );
    const winners = failed.filter((outcome) => outcome === 'written');
    expect(winners).toHaveLength(1);
    for (const outcome of failed) {
      if (outcome !== 'written') expect(outcome).toMatchObject({ code: 'EEXIST', path });
    }
    const kept = await readFile(path);
    expect(versions.some((data) => data.equals(kept))).toBe(true);

    await Promise.all(versions.map((data) => writeFileAtomic(path, data, { ifExists: 'replace' })));
    const replaced = await readFile(path);
    expect(versions.some((data) => data.equals(replaced))).toBe(true);
    expect(await readdir(scratch.path)).toEqual(['manifest']);
  });
});
