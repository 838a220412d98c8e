import { readFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, runPeerOk } from '@x/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-create-');
afterAll(() => temp.remove());

let n = 0;

/** qemu-img check finds no errors and no leaks (its JSON leaves zero counts out). */
async function qemuCheckClean(path: string): Promise<void> {
  const result = await runPeerOk('qemu-img', ['check', '--output=json', path]);
  const report = JSON.parse(result.stdout);
  expect({ corruptions: report.corruptions ?? 0, leaks: report.leaks ?? 0 }).toEqual({
    corruptions: 0,
    leaks: 0,
  });
}

/** Creates the image with qemu-img and with us, same arguments; returns both paths. */
async function createBoth(args: string[], size?: string): Promise<[string, string, string]> {
  const id = n++;
  const ours = temp.file(`ours-${id}.qcow2`);
  const theirs = temp.file(`qemu-${id}.qcow2`);
  const sizeArgs = size === undefined ? [] : [size];
  const qemu = await runPeerOk('qemu-img', ['create', '-f', 'qcow2', ...args, theirs, ...sizeArgs]);
  const result = await qcow2('create', ...args, ours, ...sizeArgs);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  // The "Formatting …" line names a different file; the options must read the same.
  expect(result.stdout.replace(ours, theirs)).toBe(qemu.stdout);
  return [ours, theirs, result.stdout];
}

describe('qcow2 create: the bytes qemu-img create writes', () => {
  const cases: [string, string[], string][] = [
    ['defaults', [], '1G'],
    ['an odd size (rounded up to 512)', [], '1000001'],
    ['compat=0.10, 4 KiB clusters', ['-o', 'compat=0.10,cluster_size=4k'], '100M'],
    ['metadata preallocation', ['-o', 'preallocation=metadata'], '100M'],
    [
      'v2 metadata preallocation',
      ['-o', 'compat=v2,preallocation=metadata,cluster_size=2M'],
      '64M',
    ],
    [
      'zstd, extended L2, 8-bit refcounts, lazy refcounts',
      ['-o', 'compression_type=zstd', '-o', 'extended_l2=on,refcount_bits=8,lazy_refcounts=on'],
      '5G',
    ],
    ['1-bit refcounts', ['-o', 'refcount_bits=1'], '2G'],
    ['64-bit refcounts, 512-byte clusters', ['-o', 'refcount_bits=64,cluster_size=512'], '64M'],
    ['size given with -o size', ['-o', 'size=64M'], ''],
  ];
  for (const [name, args, size] of cases) {
    it(name, async () => {
      const [ours, theirs] = await createBoth(args, size === '' ? undefined : size);
      expect(await filesEqual(ours, theirs)).toBe(true);
      await qemuCheckClean(ours);
    });
  }

  it('an overlay with -b/-F takes the backing file size, as qemu-img does', async () => {
    const base = temp.file('base.qcow2');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '96M']);
    const [ours, theirs, printed] = await createBoth(['-b', base, '-F', 'qcow2']);
    expect(printed).toContain('size=100663296');
    expect(await filesEqual(ours, theirs)).toBe(true);
    await qemuCheckClean(ours);
  });

  it('compat and a data file with a backing file: the options line in qemu-img order', async () => {
    const base = temp.file('base-order.qcow2');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '8M']);
    for (const options of [
      `compat=0.10,backing_file=${base},backing_fmt=qcow2,cluster_size=4k`,
      `backing_fmt=qcow2,lazy_refcounts=on,backing_file=${base},compat=1.1`,
    ]) {
      const [ours, theirs] = await createBoth(['-o', options], '16M');
      expect(await filesEqual(ours, theirs)).toBe(true);
    }
  });

  it('backing_file/backing_fmt as -o options, with a size of its own', async () => {
    const base = temp.file('base-raw.img');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'raw', base, '8M']);
    const [ours, theirs] = await createBoth(['-o', `backing_file=${base},backing_fmt=raw`], '16M');
    expect(await filesEqual(ours, theirs)).toBe(true);
    await qemuCheckClean(ours);
  });
});

describe('qcow2 create: its own rules', () => {
  it('--json (and --output=json) prints one document describing the image', async () => {
    for (const flag of ['--json', '--output=json']) {
      const path = temp.file(`json-${n++}.qcow2`);
      const result = await qcow2('create', flag, '-o', 'cluster_size=128k', path, '10M');
      expect(result.code).toBe(0);
      const document = JSON.parse(result.stdout);
      expect(document).toMatchObject({
        filename: path,
        format: 'qcow2',
        'virtual-size': 10 << 20,
        'cluster-size': 128 << 10,
        compat: '1.1',
        'refcount-bits': 16,
        'compression-type': 'zlib',
      });
      expect(document['actual-size']).toBe((await readFile(path)).byteLength);
    }
  });

  it('refuses an existing file unless --force', async () => {
    const path = temp.file('exists.qcow2');
    expect((await qcow2('create', path, '1M')).code).toBe(0);
    const again = await qcow2('create', path, '2M');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists \(use --force/);
    expect((await qcow2('create', '--force', '-q', path, '2M')).stdout).toBe('');
    const info = JSON.parse((await runPeerOk('qemu-img', ['info', '--output=json', path])).stdout);
    expect(info['virtual-size']).toBe(2 << 20);
  });

  it.each([
    [['-o', 'foo=1'], /unknown option "foo"/],
    [['-o', 'compat=2'], /compat: expected/],
    [['-o', 'preallocation=full'], /not supported/],
    [['-o', 'encrypt.format=luks'], /encrypted images are not supported/],
    [['-o', 'lazy_refcounts=maybe'], /expected on or off/],
    [['-b', 'base.qcow2'], /needs its format/],
  ])('usage error for %j', async (args, message) => {
    const result = await qcow2('create', ...args, temp.file(`bad-${n++}.qcow2`), '1M');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('invalid combinations are refused by the library, nothing is left behind', async () => {
    const path = temp.file('v2-lazy.qcow2');
    const result = await qcow2('create', '-o', 'compat=0.10,lazy_refcounts=on', path, '1M');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/lazy refcounts need version 3/);
    await expect(readFile(path)).rejects.toThrow();
  });

  it('no size and no backing file is a usage error', async () => {
    const result = await qcow2('create', temp.file('nosize.qcow2'));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/give the image size/);
  });
});
