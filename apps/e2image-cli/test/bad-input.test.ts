import { copyFile, readFile, stat, truncate } from 'node:fs/promises';
import { filesEqual, makeTempDir, runPeer, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSmallFixtures,
  debugfsWrite,
  type Layout,
  readLayout,
  type SmallFixtures,
  sourceState,
} from '../../../packages/e2image/test/support/damage.js';
import { type Result, run } from './support/run-cli.js';

function jsonLines(result: Result): Array<Record<string, unknown>> {
  return result.stdout
    .toString()
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

let temp: TempDir;
let small: SmallFixtures;
let layout: Layout;
beforeAll(async () => {
  temp = await makeTempDir('e2image-cli-bad-');
  small = await buildSmallFixtures();
  layout = await readLayout(small.ext4);
});
afterAll(async () => {
  await temp.remove();
});

let counter = 0;
async function damagedCopy(...commands: string[]): Promise<string> {
  const image = temp.file(`bad-${++counter}.img`);
  await copyFile(small.ext4, image);
  await debugfsWrite(image, ...commands);
  return image;
}

describe('x-e2image on damaged input', () => {
  it.each([
    ['-r', 'raw'],
    ['-Q', 'qcow2'],
    ['', 'normal'],
  ])(
    '%s: a group descriptor pointing outside the device exits 1, one line, no output left',
    async (flag, mode) => {
      const image = await damagedCopy('set_bg 0 inode_table 9999999');
      const before = await sourceState(image);
      const out = temp.file(`fail-${mode}.out`);
      const flags = flag ? [flag] : [];
      const peer = await runPeer('e2image', [...flags, image, temp.file(`theirs-${mode}.out`)]);
      expect(peer.code).not.toBe(0);
      const args = [...flags, image, out];
      const human = await run(args);
      expect(human.code).toBe(1);
      const errorLines = human.stderr.split('\n').filter((line) => line.includes('error:'));
      expect(errorLines).toHaveLength(1);
      expect(errorLines[0]).toMatch(/inode table of group 0.*\[BAD_GROUP_DESCRIPTOR\]$/);
      expect(human.stderr).not.toMatch(/\n\s+at /);
      const json = await run(['--json', ...args]);
      expect(json.code).toBe(1);
      expect(jsonLines(json).at(-1)).toMatchObject({
        error: 'E2imageError',
        code: 'BAD_GROUP_DESCRIPTOR',
        group: 0,
        path: image,
      });
      await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(`${out}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await sourceState(image)).toEqual(before);
    },
  );

  it('where e2image carries on, exits 0 with the same bytes and the warning on stderr and in --json', async () => {
    // A bad extent root magic: e2image silently leaves the inode's blocks out.
    const image = await damagedCopy(`sif <${layout.sparseIno}> block[0] 0x0001f30b`);
    const before = await sourceState(image);
    const theirs = temp.file('warn-theirs.raw');
    await runPeerOk('e2image', ['-ra', image, theirs]);
    const ours = temp.file('warn-ours.raw');
    const human = await run(['-ra', image, ours]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toMatch(/warning: inode \d+: extent tree root: bad magic/);
    expect(await filesEqual(ours, theirs)).toBe(true);
    const json = await run(['-ra', '--json', image, temp.file('warn-json.raw')]);
    expect(json.code).toBe(0);
    const lines = jsonLines(json);
    expect(lines).toContainEqual(
      expect.objectContaining({
        event: 'warning',
        code: 'EXTENT_TREE_SKIPPED',
        inode: layout.sparseIno,
      }),
    );
    expect(lines.at(-1)).toMatchObject({ event: 'summary', warnings: 1 });
    expect(await sourceState(image)).toEqual(before);
  });

  it('a QCOW2 source that is corrupt exits 1 with a typed error and leaves no output', async () => {
    const qcow2 = temp.file('corrupt.qcow2');
    await runPeerOk('e2image', ['-Q', small.ext4, qcow2]);
    await truncate(qcow2, 20000);
    const out = temp.file('corrupt-qcow2.raw');
    expect(
      (await runPeer('e2image', ['-r', qcow2, temp.file('corrupt-theirs.raw')])).code,
    ).not.toBe(0);
    const result = await run(['-r', '--json', qcow2, out]);
    expect(result.code).toBe(1);
    expect(jsonLines(result).at(-1)).toMatchObject({ code: expect.any(String), path: qcow2 });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${out}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('"-" streams a raw image to stdout, as e2image -r fs - does', () => {
  async function compareStreams(image: string): Promise<void> {
    const theirs = temp.file(`stream-theirs-${++counter}.raw`);
    // e2image's own stdout, piped to a file by the shell.
    await runPeerOk('sh', ['-c', 'e2image -r "$1" - > "$2"', 'sh', image, theirs]);
    const ours = await run(['-r', image, '-']);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout.equals(await readFile(theirs))).toBe(true);
  }

  it('the undamaged filesystem', async () => {
    await compareStreams(small.ext4);
  });

  it('a filesystem with a bitmap outside the device (a carry-on case)', async () => {
    await compareStreams(await damagedCopy('set_bg 0 block_bitmap 9999999'));
  });
});

describe('-I refuses a busy target unless -f', () => {
  // deviceUse() calls a regular file busy when a loop device is attached to it;
  // attaching one needs root (CI runs as root).
  it.runIf(process.getuid?.() === 0)(
    'a file attached to a loop device: TARGET_BUSY, untouched; with -f it is written',
    async () => {
      const normal = temp.file('install.e2i');
      expect((await run([small.ext4, normal])).code).toBe(0);
      const target = temp.file('install-target.img');
      await copyFile(small.ext4, target);
      const { stdout } = await runPeerOk('losetup', ['--find', '--show', '--read-only', target]);
      const loop = stdout.trim();
      try {
        const before = await sourceState(target);
        const refused = await run(['-I', '--json', target, normal]);
        expect(refused.code).toBe(1);
        expect(jsonLines(refused).at(-1)).toMatchObject({ code: 'TARGET_BUSY', path: target });
        expect(refused.stderr).toContain(`attached to ${loop}`);
        expect(await sourceState(target)).toEqual(before);
        const forced = await run(['-I', '-f', target, normal]);
        expect(forced.code, forced.stderr).toBe(0);
      } finally {
        await runPeerOk('losetup', ['--detach', loop]);
      }
      await runPeerOk('e2fsck', ['-fn', target]);
    },
  );

  it('an idle target is written without -f', async () => {
    const normal = temp.file('idle.e2i');
    expect((await run([small.ext4, normal])).code).toBe(0);
    const target = temp.file('idle-target.img');
    await copyFile(small.ext4, target);
    const result = await run(['-I', target, normal]);
    expect(result.code, result.stderr).toBe(0);
    await runPeerOk('e2fsck', ['-fn', target]);
  });
});
