import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runPeer, runPeerOk, seededBytes } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConvertToQcow2Options, convertToQcow2, openQcow2 } from '../src/index.js';
import { qemuImg, qemuIo } from './support/qemu-fixtures.js';
import { backingChain } from './support/read-fixtures.js';
import { expectClean, firstDifference } from './write/support.js';

/*
 * qemu-img convert -O qcow2 -B <backing> -F <fmt> (or -o backing_file=…,backing_fmt=…):
 * the new image names the backing file, the source's top layer is copied
 * (zeros as zero clusters, what the top leaves unallocated left to the
 * backing file), and past the backing file's end zeros are not written.
 * qemu-img does not compare the source with the backing file's content.
 */

const temp = await makeTempDir('qcow2-convert-backing-');
afterAll(() => temp.remove());

const MiB = 1 << 20;

/**
 * A raw disk of 6 MiB + 3 sectors: unaligned runs of random bytes with zero
 * stretches inside (shorter and longer than qemu-img's 4 KiB minimum hole),
 * once sparse (holes dug) and once dense. Beside it, backing files: a qcow2 of
 * 4 MiB (shorter than the source) with data, zero and unallocated clusters,
 * and a raw one of 8 MiB (longer) with data and holes.
 */
beforeAll(async () => {
  const size = 6 * MiB + 3 * 512;
  const image = Buffer.alloc(size);
  const runs: Array<[number, number]> = [
    [0, 100_000],
    [200_704, 70_000],
    [1 * MiB - 512, 300_000],
    [2 * MiB + 4096, 5000],
    [3 * MiB + 1536, 900_000],
    [5 * MiB + 32768, 65536],
    [size - 3000, 3000],
  ];
  runs.forEach(([offset, length], index) => {
    const run = seededBytes(length, index + 1);
    for (const [at, hole] of [
      [length >> 3, 100],
      [length >> 2, 4096],
      [length >> 1, 70_000],
    ] as const) {
      run.fill(0, at, Math.min(length, at + hole));
    }
    run.copy(image, offset);
  });
  await writeFile(temp.file('dense.raw'), image);
  await writeFile(temp.file('sparse.raw'), image);
  await runPeerOk('fallocate', ['--dig-holes', temp.file('sparse.raw')]);

  await qemuImg('create', '-q', '-f', 'qcow2', temp.file('base.qcow2'), '4M');
  await qemuIo(
    temp.file('base.qcow2'),
    'write -P 0x51 0 1M',
    'write -z 1M 512k',
    'write -P 0x52 2M 64k',
    'write -c -P 0x53 3M 128k',
  );
  await qemuImg('create', '-q', '-f', 'raw', temp.file('base.raw'), '8M');
  await runPeerOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x61 512k 3M', temp.file('base.raw')]);
});

let counter = 0;

/**
 * Converts `input` with our library and with qemu-img (both outputs in the
 * temp directory, the backing file named as given), and expects the same
 * bytes, an image qemu-img check calls clean and, where the source's own
 * backing chain is `backingFile`'s content, the same guest bytes as the source.
 */
async function expectSameAsQemu(
  input: string,
  backingFile: string,
  backingFormat: 'qcow2' | 'raw',
  options: Omit<ConvertToQcow2Options, 'backingFile' | 'backingFormat'> = {},
  qemuOptions: string[] = [],
  expectEqualGuest = true,
): Promise<Buffer> {
  const index = counter++;
  const ours = temp.file(`ours-${index}.qcow2`);
  const theirs = temp.file(`qemu-${index}.qcow2`);
  await convertToQcow2(input, ours, {
    ...options,
    backingFile,
    backingFormat,
    backingPolicy: 'allow',
    sync: false,
  });
  const args = ['convert', '-O', 'qcow2', '-B', backingFile, '-F', backingFormat];
  if (options.compress) args.push('-c');
  await runPeerOk('qemu-img', [...args, ...qemuOptions, input, theirs], { cwd: temp.path });
  const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
  expect(
    { sizes: [a.byteLength, b.byteLength], firstDifference: firstDifference(a, b) },
    `${input} -B ${backingFile} ${JSON.stringify(options)}`,
  ).toEqual({ sizes: [b.byteLength, b.byteLength], firstDifference: -1 });
  await expectClean(ours);
  if (expectEqualGuest) {
    const compared = await runPeer('qemu-img', ['compare', ours, input], { cwd: temp.path });
    expect(compared.code, compared.stdout + compared.stderr).toBe(0);
  }
  return a;
}

describe('convertToQcow2 with a backing file writes what qemu-img convert -B writes', () => {
  for (const layout of ['sparse', 'dense'] as const) {
    it(`raw source (${layout}) over a shorter qcow2 and a longer raw backing file`, async () => {
      const input = temp.file(`${layout}.raw`);
      for (const [backing, format] of [
        ['base.qcow2', 'qcow2'],
        ['base.raw', 'raw'],
      ] as const) {
        await expectSameAsQemu(input, backing, format);
        await expectSameAsQemu(input, backing, format, { compress: true });
        await expectSameAsQemu(input, backing, format, { clusterSize: 4096 }, [
          '-o',
          'cluster_size=4096',
        ]);
      }
    });
  }

  it('compat 0.10 (zeros written as data), extended L2, lazy refcounts, small clusters, zstd', async () => {
    const input = temp.file('sparse.raw');
    await expectSameAsQemu(input, 'base.qcow2', 'qcow2', { version: 2 }, ['-o', 'compat=0.10']);
    await expectSameAsQemu(input, 'base.raw', 'raw', { version: 2, compress: true }, [
      '-o',
      'compat=0.10',
    ]);
    await expectSameAsQemu(input, 'base.qcow2', 'qcow2', { extendedL2: true }, [
      '-o',
      'extended_l2=on',
    ]);
    await expectSameAsQemu(
      input,
      'base.raw',
      'raw',
      { extendedL2: true, preallocation: 'metadata', clusterSize: 32768 },
      ['-o', 'extended_l2=on,preallocation=metadata,cluster_size=32768'],
    );
    await expectSameAsQemu(input, 'base.qcow2', 'qcow2', { lazyRefcounts: true }, [
      '-o',
      'lazy_refcounts=on',
    ]);
    await expectSameAsQemu(input, 'base.qcow2', 'qcow2', { clusterSize: 512, compress: true }, [
      '-o',
      'cluster_size=512',
    ]);
    await expectSameAsQemu(input, 'base.raw', 'raw', { compress: true, compressionType: 'zstd' }, [
      '-o',
      'compression_type=zstd',
    ]);
  });

  it("a qcow2 overlay over its own backing file: only the overlay's clusters are copied", async () => {
    const top = await backingChain('qcow2');
    const mid = join(top, '..', 'mid.qcow2');
    // mid (48 MiB) is shorter than top (64 MiB): past its end zeros are not written.
    const image = await expectSameAsQemu(top, mid, 'qcow2');
    await expectSameAsQemu(top, mid, 'qcow2', { compress: true, clusterSize: 16384 }, [
      '-o',
      'cluster_size=16384',
    ]);
    // A copy of the overlay alone is far smaller than the whole disk.
    const whole = await convertToQcow2(top, temp.file('whole.qcow2'), {
      backingPolicy: 'allow',
      sync: false,
    });
    expect(image.byteLength).toBeLessThan(whole.fileSize / 4);
    // Another backing file than the source's: qemu-img copies the same clusters all the same.
    await expectSameAsQemu(top, join(top, '..', 'base.qcow2'), 'qcow2', {}, [], false);
  });

  it('a qcow2 file used as a raw backing file (-F raw), as qemu-img allows', async () => {
    await expectSameAsQemu(temp.file('dense.raw'), 'base.qcow2', 'raw');
  });

  it('stores the backing file name as given; a relative one resolves beside the image', async () => {
    const subdirectory = temp.file('sub');
    await runPeerOk('mkdir', ['-p', subdirectory]);
    const output = join(subdirectory, 'relative.qcow2');
    await convertToQcow2(temp.file('sparse.raw'), output, {
      backingFile: '../base.qcow2',
      backingFormat: 'qcow2',
      sync: false,
    });
    const image = await openQcow2(output, { backingPolicy: 'allow' });
    expect(image.metadata.backingFile).toBe('../base.qcow2');
    expect(image.metadata.backingFormat).toBe('qcow2');
    expect(image.backing?.name).toBe(temp.file('base.qcow2'));
    await image.close();
    // Resolved against the output's directory, not the working directory.
    await expect(
      convertToQcow2(temp.file('sparse.raw'), join(subdirectory, 'missing.qcow2'), {
        backingFile: 'base.qcow2',
        backingFormat: 'qcow2',
      }),
    ).rejects.toMatchObject({ code: 'ENOENT', structure: 'backing file' });
  });
});

describe('convertToQcow2 with a backing file that cannot be used', () => {
  const leftovers = async () => (await readdir(temp.path)).filter((name) => name.includes('bad'));

  it('a missing backing file, a wrong backing format, a protocol name: typed errors, no output', async () => {
    const input = temp.file('sparse.raw');
    await expect(
      convertToQcow2(input, temp.file('bad-1.qcow2'), {
        backingFile: 'nope.qcow2',
        backingFormat: 'qcow2',
      }),
    ).rejects.toMatchObject({ code: 'ENOENT', path: temp.file('nope.qcow2') });
    await expect(
      convertToQcow2(input, temp.file('bad-2.qcow2'), {
        backingFile: 'base.raw',
        backingFormat: 'qcow2',
      }),
    ).rejects.toMatchObject({ code: 'NOT_QCOW2', path: temp.file('base.raw') });
    await expect(
      convertToQcow2(input, temp.file('bad-3.qcow2'), {
        backingFile: 'nbd:localhost:10809',
        backingFormat: 'raw',
      }),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED', structure: 'backing file' });
    expect(await leftovers()).toEqual([]);
  });

  it('refuses an output that is its own backing file, and preallocation without extended L2', async () => {
    const input = temp.file('sparse.raw');
    const output = temp.file('bad-self.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', output, '1M');
    await expect(
      convertToQcow2(input, output, {
        backingFile: 'bad-self.qcow2',
        backingFormat: 'qcow2',
        overwrite: true,
      }),
    ).rejects.toMatchObject({ code: 'SAME_FILE' });
    expect(existsSync(output)).toBe(true);
    await expect(
      convertToQcow2(input, temp.file('bad-4.qcow2'), {
        backingFile: 'base.qcow2',
        backingFormat: 'qcow2',
        preallocation: 'metadata',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await leftovers()).toEqual(['bad-self.qcow2']);
  });
});
