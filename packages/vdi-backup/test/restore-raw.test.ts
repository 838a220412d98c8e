import { createReadStream } from 'node:fs';
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FileDevice } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, restoreBackup } from '../src/index.js';
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

  it('a disk that grew between the snapshots: refused on the old base, exact on a grown one', async () => {
    // dog keeps the base's size and drops what lies past it (formats/sheepdog.md §7);
    // we refuse instead, and a base grown with zeros gives the later disk exactly.
    const small = temp.file('grew-from.raw');
    const large = temp.file('grew-to.raw');
    await writeFile(small, Buffer.alloc(2 * MiB, 0x33));
    const grown = Buffer.alloc(3 * MiB + 512, 0x33);
    grown.fill(0, 2 * MiB);
    grown.fill(0x44, 2 * MiB + 4096, 2 * MiB + 8192);
    grown.fill(0x55, 3 * MiB);
    await writeFile(large, grown);
    const stream = temp.file('grew.backup');
    const from = await FileDevice.open(small);
    const to = await FileDevice.open(large);
    await createBackup(from, to, { output: stream, objectSize: MiB });
    await from.close();
    await to.close();

    const output = temp.file('grew-restored.raw');
    await expect(
      restoreBackup(stream, { type: 'raw', base: small, output }, { objectSize: MiB }),
    ).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(stat(output)).rejects.toMatchObject({ code: 'ENOENT' });
    await truncate(small, grown.byteLength);
    await restoreBackup(stream, { type: 'raw', base: small, output }, { objectSize: MiB });
    expect((await readFile(output)).equals(grown)).toBe(true);
  });
});
