import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { filesEqual, makeTempDir, runPeer, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

/*
 * convert -O qcow2 -B <backing> -F <fmt>, or -o backing_file=…,backing_fmt=…:
 * the bytes qemu-img convert writes for the same arguments (only the
 * source's top layer copied, zeros as zero clusters), and qemu-img's rules.
 */

const temp = await makeTempDir('qcow2-cli-convert-backing-');
afterAll(() => temp.remove());

/** base.qcow2 (4 MiB) <- overlay.qcow2 (6 MiB); the overlay's guest bytes as raw. */
beforeAll(async () => {
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', temp.file('base.qcow2'), '4M']);
  await runPeerOk('qemu-io', [
    ...['write -P 0x11 0 2M', 'write -z 2M 512k', 'write -P 0x12 3M 1M'].flatMap((c) => ['-c', c]),
    temp.file('base.qcow2'),
  ]);
  await runPeerOk('qemu-img', [
    ...['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2'],
    ...[temp.file('overlay.qcow2'), '6M'],
  ]);
  await runPeerOk('qemu-io', [
    ...[
      'write -P 0x21 100k 300k',
      'write -z 1M 128k',
      'write -c -P 0x22 3M 64k',
      'write -P 0 5M 64k',
      'write -P 0x23 5500k 4k',
    ].flatMap((c) => ['-c', c]),
    temp.file('overlay.qcow2'),
  ]);
  await runPeerOk('qemu-img', [
    ...['convert', '-O', 'raw', temp.file('overlay.qcow2'), temp.file('overlay.raw')],
  ]);
});

let n = 0;

/** Our convert and qemu-img's, same arguments, run in the temp directory (relative names). */
async function convertBoth(args: string[], input: string): Promise<[string, string]> {
  const id = n++;
  const ours = temp.file(`ours-${id}.qcow2`);
  const theirs = temp.file(`qemu-${id}.qcow2`);
  await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', ...args, input, theirs], {
    cwd: temp.path,
  });
  const result = await qcow2('convert', '-O', 'qcow2', ...args, input, ours);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return [ours, theirs];
}

async function expectGuestEqual(image: string, reference: string): Promise<void> {
  const compared = await runPeer('qemu-img', ['compare', image, reference]);
  expect(compared.code, compared.stdout + compared.stderr).toBe(0);
}

describe('qcow2 convert -B / -o backing_file: the bytes qemu-img convert writes', () => {
  it.each([
    [['-B', 'base.qcow2', '-F', 'qcow2']],
    [['-o', 'backing_file=base.qcow2,backing_fmt=qcow2']],
    [['-B', 'base.qcow2', '-F', 'qcow2', '-c']],
    [['-B', 'base.qcow2', '-F', 'qcow2', '-o', 'compat=0.10,cluster_size=4k']],
    [['-B', 'base.qcow2', '-F', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k']],
    // qemu-img: -B and -F win over the -o forms.
    [['-o', 'backing_file=other.qcow2,backing_fmt=raw', '-B', 'base.qcow2', '-F', 'qcow2']],
  ])('an overlay over its backing file: %j', async (args) => {
    const [ours, theirs] = await convertBoth(args, temp.file('overlay.qcow2'));
    expect(await filesEqual(ours, theirs)).toBe(true);
    await runPeerOk('qemu-img', ['check', '-q', ours]);
    await expectGuestEqual(ours, temp.file('overlay.qcow2'));
  });

  it('a raw source over a backing file: every cluster of it is written, zeros as zero clusters', async () => {
    for (const args of [
      ['-B', 'base.qcow2', '-F', 'qcow2'],
      ['-B', 'base.qcow2', '-F', 'qcow2', '-c'],
      ['-B', 'overlay.raw', '-F', 'raw'],
    ]) {
      const [ours, theirs] = await convertBoth(args, temp.file('overlay.raw'));
      expect(await filesEqual(ours, theirs), args.join(' ')).toBe(true);
      await runPeerOk('qemu-img', ['check', '-q', ours]);
      await expectGuestEqual(ours, temp.file('overlay.raw'));
    }
  });

  it('--json reports the backing file; a relative name is stored as given', async () => {
    await runPeerOk('mkdir', ['-p', temp.file('sub')]);
    const out = temp.file('sub/relative.qcow2');
    const result = await qcow2(
      ...['convert', '-O', 'qcow2', '--json', '-B', '../base.qcow2', '-F', 'qcow2'],
      ...[temp.file('overlay.qcow2'), out],
    );
    expect(result.code, result.stderr).toBe(0);
    const done = JSON.parse(result.stdout.trim().split('\n').at(-1) as string);
    expect(done).toMatchObject({
      event: 'done',
      'backing-filename': '../base.qcow2',
      'backing-filename-format': 'qcow2',
    });
    const info = JSON.parse((await runPeerOk('qemu-img', ['info', '--output=json', out])).stdout);
    expect(info['backing-filename']).toBe('../base.qcow2');
    expect(info['full-backing-filename']).toBe(`${temp.path}/sub/../base.qcow2`);
  });
});

describe("qcow2 convert -B: qemu-img's refusals", () => {
  const leftovers = async () =>
    (await readdir(temp.path)).filter((name) => name.startsWith('refused'));

  it.each([
    [['-O', 'qcow2', '-B', 'base.qcow2'], 'a backing file needs its format: -F qcow2 or -F raw'],
    [
      ['-O', 'qcow2', '-o', 'backing_file=base.qcow2'],
      'a backing file needs its format: -F qcow2 or -F raw',
    ],
    [
      ['-O', 'qcow2', '-F', 'qcow2'],
      'a backing format needs a backing file (-B or -o backing_file)',
    ],
    [
      ['-B', 'base.qcow2', '-F', 'qcow2'],
      '-c, -o, -B, -F and --cluster-size apply to qcow2 output (-O qcow2) only',
    ],
  ])('%j is a usage error', async (args, message) => {
    const result = await qcow2('convert', ...args, temp.file('overlay.raw'), temp.file('refused'));
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`qcow2: ${message} (see --help)\n`);
    expect(await leftovers()).toEqual([]);
  });

  it('a missing backing file or one in another format fails with exit 1, nothing left behind', async () => {
    const missing = await qcow2(
      ...['convert', '-O', 'qcow2', '--json', '-B', 'nope.qcow2', '-F', 'qcow2'],
      ...[temp.file('overlay.raw'), temp.file('refused-1.qcow2')],
    );
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
      code: 'ENOENT',
      path: temp.file('nope.qcow2'),
    });
    const wrongFormat = await qcow2(
      ...['convert', '-O', 'qcow2', '-B', 'overlay.raw', '-F', 'qcow2'],
      ...[temp.file('overlay.raw'), temp.file('refused-2.qcow2')],
    );
    expect(wrongFormat.code).toBe(1);
    expect(wrongFormat.stderr).toContain(
      `the backing file "overlay.raw" of ${temp.file('refused-2.qcow2')} cannot be used: not a qcow2 image`,
    );
    expect(await leftovers()).toEqual([]);
    expect(existsSync(temp.file('refused-2.qcow2.partial'))).toBe(false);
  });
});
