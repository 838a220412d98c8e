import { createReadStream } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreBackup } from '../src/index.js';
import { dogStream } from './support/streams.js';

const MiB = 1 << 20;

describe('restore into a raw image', () => {
  let temp: TempDir;
  let base: string;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-restore-');
    base = temp.file('base.raw');
    await writeFile(base, Buffer.alloc(8 * MiB, 0x11));
  });
  afterAll(() => temp.remove());

  it('applies a stream read from a readable stream (spooled first)', async () => {
    const stream = temp.file('ok.backup');
    await writeFile(stream, dogStream([[1, 512, Buffer.alloc(512, 0x22)]]));
    const output = temp.file('from-stdin.raw');
    const result = await restoreBackup(
      createReadStream(stream),
      { type: 'raw', base, output },
      { objectSize: MiB },
    );
    expect(result).toMatchObject({ records: 1, bytesWritten: 512, layout: 'dog' });
    // The restored disk's data is the owner's alone.
    expect((await stat(output)).mode & 0o777).toBe(0o600);
    const restored = await readFile(output);
    expect(restored.byteLength).toBe(8 * MiB);
    expect(restored[MiB + 511]).toBe(0x11);
    expect(restored[MiB + 512]).toBe(0x22);
    expect(restored[MiB + 1024]).toBe(0x11);
  });

  const badStreams: Array<[string, Buffer, string]> = [
    [
      'a bad magic',
      Buffer.from('0100000000000000ffffffff000000000000000000000000', 'hex'),
      'BAD_MAGIC',
    ],
    [
      'a cut stream',
      dogStream([
        [0, 0, 512],
        [3, 0, 1024],
      ]).subarray(0, 1000),
      'TRUNCATED',
    ],
    [
      'overlapping records',
      dogStream([
        [0, 0, 1024],
        [0, 512, 512],
      ]),
      'UNSORTED',
    ],
    [
      'a record past the last object',
      dogStream([
        [0, 0, 512],
        [8, 0, 512],
      ]),
      'TOO_LARGE',
    ],
    ['a record for larger objects', dogStream([[0, MiB, 512]]), 'BAD_RECORD'],
  ];

  it.each(badStreams)('leaves no output for %s (%s)', async (_what, bytes, code) => {
    const stream = temp.file('bad.backup');
    await writeFile(stream, bytes);
    const output = temp.file('never.raw');
    const before = await readdir(temp.path);
    await expect(
      restoreBackup(stream, { type: 'raw', base, output }, { objectSize: MiB }),
    ).rejects.toMatchObject({ code });
    // The last bad stream is also fed through a pipe: the spool file goes away too.
    await expect(
      restoreBackup(Readable.from([bytes]), { type: 'raw', base, output }, { objectSize: MiB }),
    ).rejects.toMatchObject({ code });
    expect(await readdir(temp.path)).toEqual(before);
    expect((await readFile(base)).equals(Buffer.alloc(8 * MiB, 0x11))).toBe(true);
  });

  it('refuses an existing output without overwrite, and the base as output', async () => {
    const stream = temp.file('empty.backup');
    await writeFile(stream, dogStream([]));
    const existing = temp.file('existing.raw');
    await writeFile(existing, 'keep');
    await expect(
      restoreBackup(stream, { type: 'raw', base, output: existing }),
    ).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(existing, 'utf8')).toBe('keep');
    await expect(
      restoreBackup(stream, { type: 'raw', base, output: base, overwrite: true }),
    ).rejects.toMatchObject({ code: 'SAME_FILE' });
    await restoreBackup(stream, { type: 'raw', base, output: existing, overwrite: true });
    expect((await readFile(existing)).byteLength).toBe(8 * MiB);
  });
});
