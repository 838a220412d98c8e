import { createHash } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice } from '@x/blockio';
import { cachedFixture, makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, openBackupSources, restoreBackup } from '../src/index.js';
import { collector } from './support/memory.js';
import { PACKAGE_ROOT } from './support/sheepdog-fixtures.js';
import { dogStream } from './support/streams.js';

const sha = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** An image with snapshots s1 and s2 made by qemu-img around qemu-io writes. */
async function qemuImage(
  name: string,
  recipe: { backing?: string[]; s1: string[]; s2: string[]; after: string[] },
) {
  const dir = await cachedFixture(
    PACKAGE_ROOT,
    `qcow2-${name}`,
    JSON.stringify(recipe),
    async (dir) => {
      const image = join(dir, 'disk.qcow2');
      if (recipe.backing) {
        const base = join(dir, 'base.qcow2');
        await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
        await runPeerOk('qemu-io', [...recipe.backing.flatMap((c) => ['-c', c]), base]);
        await runPeerOk('qemu-img', [
          'create',
          '-q',
          '-f',
          'qcow2',
          '-b',
          'base.qcow2',
          '-F',
          'qcow2',
          image,
        ]);
      } else {
        await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
      }
      const io = (commands: string[]) =>
        commands.length === 0
          ? undefined
          : runPeerOk('qemu-io', [...commands.flatMap((c) => ['-c', c]), image]);
      await io(recipe.s1);
      await runPeerOk('qemu-img', ['snapshot', '-c', 's1', image]);
      await io(recipe.s2);
      await runPeerOk('qemu-img', ['snapshot', '-c', 's2', image]);
      await io(recipe.after);
      for (const snapshot of ['s1', 's2']) {
        await runPeerOk('qemu-img', [
          'convert',
          '-O',
          'raw',
          '-l',
          `snapshot.name=${snapshot}`,
          image,
          join(dir, `${snapshot}.raw`),
        ]);
      }
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, join(dir, 'active.raw')]);
    },
  );
  return { dir, image: join(dir, 'disk.qcow2'), raw: (name: string) => join(dir, `${name}.raw`) };
}

const RECIPES = {
  plain: {
    s1: ['write -P 1 0 8M', 'write -P 2 20M 1M', 'write -c -P 3 32M 64k', 'write -P 4 40M 4M'],
    s2: [
      'write -P 5 1000k 4k',
      'write -z 20M 512k',
      'write -c -P 6 36M 64k',
      'write -P 7 41M 513',
      'discard 44M 64k',
    ],
    after: ['write -P 8 0 1M'],
  },
  backing: {
    backing: ['write -P 9 0 16M', 'write -c -P 10 30M 128k'],
    s1: ['write -P 1 1M 3000'],
    s2: ['write -P 2 5M 512', 'write -z 12M 64k', 'write -P 3 30M 7000'],
    after: ['write -P 4 2M 1M'],
  },
};

describe('QCOW2 snapshots as sources and targets', () => {
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-qcow2-');
  });
  afterAll(() => temp.remove());

  it.each(Object.keys(RECIPES))(
    '%s: backup + restore reproduces s2 exactly; qemu-img check is clean',
    async (name) => {
      const fixture = await qemuImage(name, RECIPES[name as keyof typeof RECIPES]);
      // The stream equals the one made from the two snapshots converted to raw by qemu-img.
      const sources = await openBackupSources({ source: fixture.image, from: 's1', to: 's2' });
      // As the CLI does: read on the thread pool in the pieces the sources ask for.
      expect(sources.readSize).toBe(1 << 20);
      expect(sources.hostFiles).toBeDefined();
      const fromSnapshots = collector();
      const onThreads = collector();
      const fromHostOffsets = collector();
      let result: Awaited<ReturnType<typeof createBackup>>;
      try {
        result = await createBackup(sources.from, sources.to, {
          output: fromSnapshots,
          sharedRanges: sources.sharedRanges,
          readSize: sources.readSize,
          compareThreads: 0,
        });
        // As the CLI does: the changed clusters read from the image file at their host
        // offsets (compressed and backing ones through the views); and the same on
        // worker threads.
        const fromHost = await createBackup(sources.from, sources.to, {
          output: fromHostOffsets,
          sharedRanges: sources.sharedRanges,
          hostFiles: sources.hostFiles,
          readSize: sources.readSize,
        });
        // The same counts, but "from" is not read between an object's first and last
        // difference (the record is "to"'s bytes there): fewer bytes read, more skipped.
        const { bytesRead, bytesSkipped, ...rest } = fromHost;
        const { bytesRead: read, bytesSkipped: skipped, ...expected } = result;
        expect(rest).toEqual(expected);
        expect(bytesRead).toBeLessThanOrEqual(read);
        expect(bytesRead + bytesSkipped).toBe(read + skipped);
        const threaded = await createBackup(sources.from, sources.to, {
          output: onThreads,
          sharedRanges: sources.sharedRanges,
          hostFiles: sources.hostFiles,
          readSize: sources.readSize,
          compareThreads: 2,
        });
        expect(threaded).toEqual(result);
      } finally {
        await sources.close();
      }
      expect(onThreads.bytes().equals(fromSnapshots.bytes())).toBe(true);
      expect(fromHostOffsets.bytes().equals(fromSnapshots.bytes())).toBe(true);
      const rawFrom = await FileDevice.open(fixture.raw('s1'));
      const rawTo = await FileDevice.open(fixture.raw('s2'));
      const fromRaw = collector();
      await createBackup(rawFrom, rawTo, { output: fromRaw });
      await rawFrom.close();
      await rawTo.close();
      expect(fromSnapshots.bytes().equals(fromRaw.bytes())).toBe(true);
      expect(result.records).toBeGreaterThan(0);
      // Clusters both snapshots share are never read (whole objects among them).
      expect(result.objectsSkippedShared).toBeGreaterThan(0);
      expect(result.bytesSkipped).toBeGreaterThan(0);
      expect(result.bytesRead).toBeLessThan(2 * 64 * 2 ** 20);

      const stream = temp.file(`${name}.backup`);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(stream, fromSnapshots.bytes());

      // As a new snapshot: the active layer is left as it was.
      const copy = temp.file(`${name}-as.qcow2`);
      await copyFile(fixture.image, copy);
      if (name === 'backing')
        await copyFile(join(fixture.dir, 'base.qcow2'), temp.file('base.qcow2'));
      const restored = await restoreBackup(stream, {
        type: 'qcow2',
        image: copy,
        base: 's1',
        as: 'restored',
      });
      expect(restored.describe.snapshot).toBe('restored');
      const out = temp.file(`${name}-restored.raw`);
      await runPeerOk('qemu-img', [
        'convert',
        '-O',
        'raw',
        '-l',
        'snapshot.name=restored',
        copy,
        out,
      ]);
      expect(await sha(out)).toBe(await sha(fixture.raw('s2')));
      const active = temp.file(`${name}-active.raw`);
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', copy, active]);
      expect(await sha(active)).toBe(await sha(fixture.raw('active')));
      await runPeerOk('qemu-img', ['check', copy]);
      const list = await runPeerOk('qemu-img', ['snapshot', '-l', copy]);
      expect(list.stdout).not.toContain('vdi-backup-keep');

      // Into the active layer.
      const intoActive = temp.file(`${name}-active.qcow2`);
      await copyFile(fixture.image, intoActive);
      await restoreBackup(stream, { type: 'qcow2', image: intoActive, base: 's1' });
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', intoActive, out]);
      expect(await sha(out)).toBe(await sha(fixture.raw('s2')));
      await runPeerOk('qemu-img', ['check', intoActive]);
    },
  );

  it('bad input leaves the image untouched: a bad stream, a missing snapshot, a taken name', async () => {
    const fixture = await qemuImage('plain', RECIPES.plain);
    const copy = temp.file('untouched.qcow2');
    await copyFile(fixture.image, copy);
    const before = await sha(copy);
    const { writeFile } = await import('node:fs/promises');
    const bad = temp.file('cut.backup');
    await writeFile(bad, dogStream([[0, 0, 4096]]).subarray(0, 3000));
    await expect(
      restoreBackup(bad, { type: 'qcow2', image: copy, base: 's1', as: 'x' }),
    ).rejects.toMatchObject({ code: 'TRUNCATED' });
    const tooLarge = temp.file('large.backup');
    await writeFile(tooLarge, dogStream([[16, 0, 512]]));
    await expect(
      restoreBackup(tooLarge, { type: 'qcow2', image: copy, base: 's1' }),
    ).rejects.toMatchObject({ code: 'TOO_LARGE' });
    const good = temp.file('good.backup');
    await writeFile(good, dogStream([[0, 0, 512]]));
    await expect(
      restoreBackup(good, { type: 'qcow2', image: copy, base: 'nope', as: 'x' }),
    ).rejects.toMatchObject({ code: 'NO_SUCH_SNAPSHOT' });
    await expect(
      restoreBackup(good, { type: 'qcow2', image: copy, base: 's1', as: 's2' }),
    ).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await sha(copy)).toBe(before);
    await expect(openBackupSources({ source: copy, from: 's1', to: 'nope' })).rejects.toMatchObject(
      { code: 'NO_SUCH_SNAPSHOT' },
    );
  });
});
