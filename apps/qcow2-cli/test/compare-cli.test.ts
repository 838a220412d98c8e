import { copyFile } from 'node:fs/promises';
import { makeTempDir, pokeBytes, runPeer, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-compare-');
afterAll(() => temp.remove());

/** 16 MiB: data at 0 and 5 MiB, a zero cluster at 8 MiB, a snapshot s1 before the last write. */
let image: string;
let raw: string;
let snapshotRaw: string;

beforeAll(async () => {
  image = temp.file('image.qcow2');
  raw = temp.file('image.raw');
  snapshotRaw = temp.file('s1.raw');
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M']);
  await runPeerOk('qemu-io', ['-c', 'write -P 1 0 1M', '-c', 'write -z 8M 64k', image]);
  await runPeerOk('qemu-img', ['snapshot', '-c', 's1', image]);
  await runPeerOk('qemu-io', ['-c', 'write -P 2 5M 100k', image]);
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, raw]);
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', '-l', 's1', image, snapshotRaw]);
});

/** Runs qemu-img compare and ours on the same pair; both must print and exit alike. */
async function sameAsQemu(a: string, b: string, ...flags: string[]) {
  const theirs = await runPeer('qemu-img', ['compare', ...flags, a, b]);
  const ours = await qcow2('compare', ...flags, a, b);
  expect({ code: ours.code, stdout: ours.stdout }).toEqual({
    code: theirs.code,
    stdout: theirs.stdout,
  });
  return ours;
}

let n = 0;
async function copyWith(from: string, offset: number, bytes: number[]): Promise<string> {
  const path = temp.file(`changed-${n++}${from.endsWith('.raw') ? '.raw' : '.qcow2'}`);
  await copyFile(from, path);
  await pokeBytes(path, offset, Buffer.from(bytes));
  return path;
}

describe('qcow2 compare: what qemu-img compare says', () => {
  it('a qcow2 image and its raw conversion are identical', async () => {
    const result = await sameAsQemu(image, raw);
    expect(result.stdout).toBe('Images are identical.\n');
    await sameAsQemu(raw, image);
  });

  it('one byte changed: the offset of its sector, exit 1', async () => {
    const changed = await copyWith(raw, (5 << 20) + 70000, [0xff]);
    const result = await sameAsQemu(image, changed);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(`Content mismatch at offset ${(5 << 20) + 69632}!\n`);
  });

  it('a byte where the other image reads zeros (unallocated and zero clusters)', async () => {
    for (const offset of [(12 << 20) + 3, (8 << 20) + 1000]) {
      const changed = await copyWith(raw, offset, [1]);
      await sameAsQemu(changed, image);
    }
  });

  it('sizes differ: identical with a warning when the rest is zeros, else the offset', async () => {
    const bigger = temp.file('bigger.qcow2');
    await copyFile(image, bigger);
    await runPeerOk('qemu-img', ['resize', '-q', bigger, '+4M']);
    const same = await sameAsQemu(image, bigger);
    expect(same.stdout).toBe('Warning: Image size mismatch!\nImages are identical.\n');
    await runPeerOk('qemu-io', ['-c', 'write -P 9 18M 4k', bigger]);
    const differs = await sameAsQemu(bigger, raw);
    expect(differs.stdout).toBe(
      `Warning: Image size mismatch!\nContent mismatch at offset ${18 << 20}!\n`,
    );
    const strict = await sameAsQemu(image, bigger, '-s');
    expect(strict.stdout).toBe('Strict mode: Image size mismatch!\n');
  });

  it('strict mode: identical copies pass, a zero cluster against data does not', async () => {
    const copy = temp.file('copy.qcow2');
    await copyFile(image, copy);
    await sameAsQemu(image, copy, '-s');
    const zeroed = temp.file('zeroed.qcow2');
    await copyFile(image, zeroed);
    await runPeerOk('qemu-io', ['-c', 'write -z 512k 64k', zeroed]);
    const result = await sameAsQemu(image, zeroed, '-s');
    expect(result.stdout).toBe(`Strict mode: Offset ${512 << 10} block status mismatch!\n`);
  });

  it('-q prints nothing; the exit code tells', async () => {
    const changed = await copyWith(raw, 100, [7]);
    expect(await qcow2('compare', '-q', image, changed)).toMatchObject({ code: 1, stdout: '' });
    expect(await qcow2('compare', '-q', image, raw)).toMatchObject({ code: 0, stdout: '' });
  });
});

describe('qcow2 compare: beyond qemu-img', () => {
  it('a snapshot view of either side', async () => {
    expect(await qcow2('compare', '--snapshot-a', 's1', image, snapshotRaw)).toMatchObject({
      code: 0,
      stdout: 'Images are identical.\n',
    });
    const result = await qcow2('compare', '--snapshot-b', '1', snapshotRaw, image);
    expect(result.code).toBe(0);
    const differs = await qcow2('compare', '--snapshot-a', 's1', image, raw);
    expect(differs).toMatchObject({ code: 1, stdout: `Content mismatch at offset ${5 << 20}!\n` });
  });

  it('--json (and --output=json): one document', async () => {
    const changed = await copyWith(raw, 4096, [3]);
    for (const flag of ['--json', '--output=json']) {
      const result = await qcow2('compare', flag, image, changed);
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout)).toEqual({
        identical: false,
        'first-difference': 4096,
        reason: 'content',
        'size-mismatch': false,
        images: [
          { filename: image, format: 'qcow2', 'virtual-size': 16 << 20 },
          { filename: changed, format: 'raw', 'virtual-size': 16 << 20 },
        ],
      });
    }
  });

  it('errors exit 2, with a JSON error object under --json', async () => {
    const missing = await qcow2('compare', image, temp.file('missing.raw'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ENOENT|no such file/i);
    const json = await qcow2('compare', '--json', '--snapshot-a', 'nope', image, raw);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ code: 'NO_SUCH_SNAPSHOT' });
    expect((await qcow2('compare', image)).code).toBe(2);
  });
});
