import { readFile, writeFile } from 'node:fs/promises';
import { makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vdiBackup } from './support/cli.js';

// The bundled bin reads compressed QCOW2 clusters through @x/qcow2, whose zstd decoder
// (@foxglove/wasm-zstd on Node < 22.15) is kept out of the bundle: the app must ship it.
// Without it, `create` of a zstd image ended in "Cannot find module".
describe('create and restore across snapshots of a compressed QCOW2 image, through the bin', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('vdi-backup-cli-compressed-');
    // 6 MiB of compressible, varied data: numbered text lines.
    const lines: string[] = [];
    for (let line = 0; line < 250_000; line++) lines.push(`line ${line} of the source disk`);
    const text = Buffer.from(lines.join('\n'));
    await writeFile(dir.file('source.raw'), text.subarray(0, 6 << 20));
  });
  afterAll(() => dir.remove());

  for (const compression of ['zlib', 'zstd']) {
    it(`${compression}: restore(s1, create(s1, active)) is the active layer`, async () => {
      const image = dir.file(`${compression}.qcow2`);
      await runPeerOk('qemu-img', [
        'convert',
        '-c',
        '-O',
        'qcow2',
        '-o',
        `compression_type=${compression}`,
        dir.file('source.raw'),
        image,
      ]);
      await runPeerOk('qemu-img', ['snapshot', '-c', 's1', image]);
      await runPeerOk('qemu-io', ['-c', 'write -P 7 1M 64k', '-c', 'write -P 9 5M 4k', image]);
      const base = dir.file(`${compression}-s1.raw`);
      const later = dir.file(`${compression}-active.raw`);
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', '-l', 'snapshot.name=s1', image, base]);
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, later]);

      const stream = dir.file(`${compression}.backup`);
      const created = await vdiBackup([
        'create',
        '-F',
        's1',
        image,
        '--object-size',
        '1M',
        '-o',
        stream,
      ]);
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      const restored = dir.file(`${compression}-restored.raw`);
      const applied = await vdiBackup([
        'restore',
        '-s',
        base,
        restored,
        '-i',
        stream,
        '--object-size',
        '1M',
      ]);
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      expect((await readFile(restored)).equals(await readFile(later))).toBe(true);
    });
  }
});
