import { copyFile } from 'node:fs/promises';
import { makeTempDir } from '@x/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { openQcow2, resizeQcow2 } from '../../src/index.js';
import { qemuImg, qemuIo } from '../support/qemu-fixtures.js';
import { expectSameImageFile } from './support.js';

const dir = await makeTempDir('qcow2-resize-');
afterAll(() => dir.remove());
let n = 0;

/** A qemu-made image and a copy of it, both to be resized. */
async function pair(size: string, options: string, commands: string[]): Promise<[string, string]> {
  const theirs = dir.file(`theirs-${n}.qcow2`);
  const ours = dir.file(`ours-${n++}.qcow2`);
  await qemuImg('create', '-q', '-f', 'qcow2', ...(options ? ['-o', options] : []), theirs, size);
  if (commands.length > 0) await qemuIo(theirs, ...commands);
  await copyFile(theirs, ours);
  return [ours, theirs];
}

describe('resizeQcow2: the bytes qemu-img resize [--shrink] leaves', () => {
  const cases: [string, string, string, string[], string][] = [
    ['grow', '64M', '', ['write -P 1 0 1M'], '1G'],
    ['shrink across L2 tables', '4G', '', ['write -P 1 0 1M', 'write -P 2 3G 10M'], '100M'],
    [
      'shrink with 512-byte clusters (refcount blocks dropped)',
      '16M',
      'cluster_size=512',
      ['write -P 1 0 256k', 'write -P 2 10M 2M'],
      '4M',
    ],
    [
      'shrink 1-bit refcounts',
      '64M',
      'refcount_bits=1,cluster_size=4k',
      ['write -P 2 40M 1M'],
      '8M',
    ],
    ['shrink v2', '256M', 'compat=0.10', ['write -P 1 0 1M', 'write -z 120M 1M'], '100M'],
    ['shrink extended L2', '1G', 'extended_l2=on', ['write -P 2 600M 1M'], '300M'],
    [
      'shrink compressed clusters',
      '64M',
      '',
      ['write -c -P 1 0 64k', 'write -c -P 2 20M 64k', 'write -c -P 3 30M 64k'],
      '16M',
    ],
    ['shrink to a size inside a cluster', '64M', '', ['write -P 1 0 40M'], '33554944'],
  ];
  for (const [name, size, options, commands, newSize] of cases) {
    it(name, async () => {
      const [ours, theirs] = await pair(size, options, commands);
      await qemuImg('resize', '-q', '--shrink', theirs, newSize);
      const result = await resizeQcow2(ours, Number.parseInt(newSize, 10) * unit(newSize), {
        shrink: true,
      });
      expect(result.newSize).toBe(Number.parseInt(newSize, 10) * unit(newSize));
      await expectSameImageFile(ours, theirs);
    });
  }

  it('shrinks an image with an internal snapshot (its clusters stay)', async () => {
    // One snapshot, copied: its date is part of the bytes.
    const [, theirs] = await pair('256M', '', ['write -P 1 0 200M']);
    await qemuImg('snapshot', '-c', 's1', theirs);
    await qemuIo(theirs, 'write -P 2 100M 50M');
    const ours = dir.file(`ours-${n++}.qcow2`);
    await copyFile(theirs, ours);
    await qemuImg('resize', '-q', '--shrink', theirs, '64M');
    await resizeQcow2(ours, 64 << 20, { shrink: true });
    await expectSameImageFile(ours, theirs);
  });

  it('grows an overlay over a larger backing file by zeroing the new area, as qemu-img does', async () => {
    const base = dir.file('base.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', base, '64M');
    await qemuIo(base, 'write -P 7 0 64M');
    for (const newSize of [32 << 20, 20000256, 1 << 30]) {
      const theirs = dir.file(`overlay-theirs-${n}.qcow2`);
      const ours = dir.file(`overlay-ours-${n++}.qcow2`);
      await qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', theirs, '10000000');
      await qemuIo(theirs, 'write -P 1 0 1M');
      await copyFile(theirs, ours);
      await qemuImg('resize', '-q', theirs, String(newSize));
      await resizeQcow2(ours, newSize, { backingPolicy: 'allow' });
      await expectSameImageFile(ours, theirs);
    }
    // Past the old end the grown overlay reads zeros; before it, the backing file's data,
    // which shrinking would drop from what the guest reads.
    const overlay = dir.file(`overlay-ours-${n - 1}.qcow2`);
    await expect(resizeQcow2(overlay, 8 << 20, { backingPolicy: 'allow' })).rejects.toMatchObject({
      code: 'WOULD_LOSE_DATA',
      offset: 8 << 20,
    });
    await resizeQcow2(overlay, 16 << 20, { backingPolicy: 'allow' });
    // Version 2 cannot hold zero clusters: refused before anything changes (qemu-img fails half way).
    const v2 = dir.file('overlay-v2.qcow2');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      'compat=0.10',
      '-b',
      base,
      '-F',
      'qcow2',
      v2,
      '10M',
    );
    await expect(resizeQcow2(v2, 32 << 20, { backingPolicy: 'allow' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });

  it('without shrink: done when only zeros would go, WOULD_LOSE_DATA otherwise', async () => {
    const [ours, theirs] = await pair('64M', '', [
      'write -P 1 0 1M',
      'write -P 0 40M 1M',
      'write -z 45M 1M',
      'write -P 5 50M 512',
    ]);
    await expect(resizeQcow2(ours, 32 << 20)).rejects.toMatchObject({
      code: 'WOULD_LOSE_DATA',
      offset: 50 << 20,
    });
    await expect(resizeQcow2(ours, (old) => old - (14 << 20))).rejects.toMatchObject({
      code: 'WOULD_LOSE_DATA',
    });
    await expect(resizeQcow2(ours, 1000)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Past 50 MiB + 512 there is nothing: the shrink goes ahead, as qemu-img --shrink would.
    await qemuImg('resize', '-q', '--shrink', theirs, `${(50 << 20) + 512}`);
    const result = await resizeQcow2(ours, (50 << 20) + 512);
    expect(result).toMatchObject({ oldSize: 64 << 20, newSize: (50 << 20) + 512 });
    await expectSameImageFile(ours, theirs);
  });

  it('the image method refuses a smaller size without shrink', async () => {
    const [ours] = await pair('4M', '', []);
    const image = await openQcow2(ours, { writable: true });
    try {
      await expect(image.resize(2 << 20)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      await expect(
        image.resize(2 << 20, { shrink: true, preallocation: 'metadata' }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await image.resize(2 << 20, { shrink: true });
      expect(image.size).toBe(2 << 20);
    } finally {
      await image.close();
    }
  });
});

function unit(size: string): number {
  const suffix = size.at(-1);
  return suffix === 'G' ? 1 << 30 : suffix === 'M' ? 1 << 20 : 1;
}
