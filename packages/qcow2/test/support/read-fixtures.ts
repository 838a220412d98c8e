import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedFixture, requirePeer, runPeerOk, seededBytes } from '@x/test-utils';
import { PACKAGE_ROOT, qemuImage, qemuImg, qemuIo } from './qemu-fixtures.js';

/**
 * Images for the read path, made by the real qemu-img/qemu-io, cached by recipe.
 * Each returns the path of the image to open (the top of a chain for chains).
 */

/** Writes that exercise every cluster type: data, zero flag, compressed, discard, unaligned. */
/** MIXED_WRITES without the compressed write (preallocated images refuse it). */
export const PLAIN_WRITES = [
  'write -P 0x5a 0 3M',
  'write -z 8M 64k',
  'discard 4M 64k',
  'write -P 0x33 5000 70000',
  'write -P 0x44 40M 1M',
];

export const MIXED_WRITES = [
  'write -P 0x5a 0 3M',
  'write -z 8M 64k',
  'write -c -P 0x11 12M 128k',
  'discard 4M 64k',
  'write -P 0x33 5000 70000',
  'write -P 0x44 40M 1M',
];

/** A deterministic source file with random and compressible (text) chunks. */
async function writeSample(path: string, size: number, seed: number): Promise<void> {
  const data = Buffer.alloc(size);
  const words = ['alpha ', 'beta ', 'gamma ', 'delta ', 'qcow2 ', 'cluster ', 'sector '];
  const chunk = 256 << 10;
  for (let offset = 0, index = 0; offset < size; offset += chunk * 2, index++) {
    const length = Math.min(chunk, size - offset);
    if (index % 2 === 0) seededBytes(length, seed + index).copy(data, offset);
    else {
      let text = '';
      let state = seed + index;
      while (text.length < length) {
        state = (state * 1103515245 + 12345) >>> 0;
        text += words[state % words.length];
      }
      data.write(text.slice(0, length), offset, 'latin1');
    }
  }
  await writeFile(path, data);
}

export async function sampleFile(name: string, size: number, seed: number): Promise<string> {
  const directory = await cachedFixture(PACKAGE_ROOT, name, `sample ${size} ${seed}`, (dir) =>
    writeSample(join(dir, 'sample.bin'), size, seed),
  );
  return join(directory, 'sample.bin');
}

/** `qemu-img convert [-c] -O qcow2 -o OPTIONS` of a sample raw file. */
export async function convertedImage(
  name: string,
  options: { compress?: boolean; createOptions?: string; size?: number },
): Promise<string> {
  const size = options.size ?? 8 << 20;
  const source = await sampleFile('sample-8m', size, 7);
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    name,
    JSON.stringify(options),
    async (dir) => {
      const args = ['convert', '-q', '-O', 'qcow2'];
      if (options.compress) args.push('-c');
      if (options.createOptions) args.push('-o', options.createOptions);
      await qemuImg(...args, source, join(dir, 'image.qcow2'));
    },
  );
  return join(directory, 'image.qcow2');
}

/**
 * A chain of three: base (raw or qcow2, 32 MiB) <- mid (qcow2, 48 MiB) <- top
 * (qcow2, 64 MiB), each layer writing over part of the one below; the overlays
 * are larger than their backing files so reads past a backing file's end must
 * give zeros. Backing names are relative.
 */
export async function backingChain(baseFormat: 'raw' | 'qcow2'): Promise<string> {
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    `chain-${baseFormat}`,
    `chain v2 ${baseFormat}`,
    async (dir) => {
      const base = join(dir, `base.${baseFormat}`);
      await qemuImg('create', '-q', '-f', baseFormat, base, '32M');
      await runPeerOk('qemu-io', [
        '-f',
        baseFormat,
        ...['write -P 0x01 0 8M', 'write -P 0x02 20M 4M', 'write -P 0x03 30M 2M'].flatMap(
          (command) => ['-c', command],
        ),
        base,
      ]);
      const mid = join(dir, 'mid.qcow2');
      await qemuImg(
        'create',
        '-q',
        '-f',
        'qcow2',
        '-b',
        `base.${baseFormat}`,
        '-F',
        baseFormat,
        mid,
        '48M',
      );
      await qemuIo(mid, 'write -P 0x11 4M 2M', 'write -z 21M 1M', 'write -P 0x12 40M 1M');
      const top = join(dir, 'top.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', top, '64M');
      await qemuIo(
        top,
        'write -P 0x21 5M 64k',
        'discard 40M 64k',
        'write -P 0x22 60M 1M',
        'write -c -P 0x23 31M 128k',
      );
    },
  );
  return join(directory, 'top.qcow2');
}

/** An image with internal snapshots s1, s2 and further writes after each. */
export async function snapshotImage(): Promise<string> {
  const directory = await cachedFixture(PACKAGE_ROOT, 'snapshots', 'snapshots v1', async (dir) => {
    const image = join(dir, 'image.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', image, '32M');
    await qemuIo(image, 'write -P 0xa1 0 2M', 'write -c -P 0xa2 4M 256k');
    await qemuImg('snapshot', '-c', 's1', image);
    await qemuIo(image, 'write -P 0xb1 1M 2M', 'discard 4M 64k', 'write -z 6M 1M');
    await qemuImg('snapshot', '-c', 's2', image);
    await qemuIo(image, 'write -P 0xc1 0 512k', 'write -P 0xc2 10M 1M');
  });
  return join(directory, 'image.qcow2');
}

/** Lazy refcounts, and qemu-io aborting after a write: the dirty bit stays set. */
export async function dirtyImage(): Promise<string> {
  const directory = await cachedFixture(PACKAGE_ROOT, 'dirty', 'dirty v1', async (dir) => {
    const image = join(dir, 'image.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', image, '16M');
    // abort() kills qemu-io with SIGABRT on purpose: not a failure here.
    spawnSync(
      requirePeer('qemu-io'),
      ['-c', 'write -P 0x61 0 64k', '-c', 'write -P 0x62 1M 192k', '-c', 'abort', image],
      { stdio: 'ignore' },
    );
  });
  return join(directory, 'image.qcow2');
}

/** An image whose guest data lives in an external data file. */
export async function dataFileImage(raw: boolean): Promise<string> {
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    `datafile-${raw ? 'raw' : 'plain'}`,
    'v1',
    async (dir) => {
      const options = `data_file=image.data${raw ? ',data_file_raw=on' : ''}`;
      // Relative data file names are taken relative to the working directory on create.
      await runPeerOk(
        'qemu-img',
        ['create', '-q', '-f', 'qcow2', '-o', options, 'image.qcow2', '32M'],
        {
          cwd: dir,
        },
      );
      await runPeerOk(
        'qemu-io',
        ['write -P 0x71 0 1M', 'write -P 0x72 5M 64k', 'write -z 6M 64k', 'write -P 0x73 31M 1M']
          .flatMap((command) => ['-c', command])
          .concat('image.qcow2'),
        { cwd: dir },
      );
    },
  );
  return join(directory, 'image.qcow2');
}

/**
 * 4 KiB clusters allocated out of guest order (host order 1M, 0, 64k, then 2M behind a
 * new L2 table, then 6M..), with gaps and a zeroed cluster: for the batched reads and
 * the copy threads' windows.
 */
export function hostOrderImage(): Promise<string> {
  return qemuImage('convert-host-order', {
    size: '8M',
    options: 'cluster_size=4k',
    commands: [
      'write -P 1 1M 8k',
      'write -P 2 0 4k',
      'write -P 3 64k 4k',
      'write -P 4 2M 4k',
      'write -P 5 6M 12k',
      'write -P 6 4k 4k',
      'write -z 6M 4k',
    ],
  });
}

/** 24 MiB of one pattern in a 32 MiB image: enough plain data for the copy threads. */
export function denseImage(): Promise<string> {
  return qemuImage('convert-write-fails', { size: '32M', commands: ['write -P 9 0 24M'] });
}

/** 192 MiB of data in 4 KiB clusters: a copy long enough to be interrupted. */
export function longCopyImage(): Promise<string> {
  return qemuImage('convert-long-copy', {
    size: '256M',
    options: 'cluster_size=4k',
    commands: ['write -P 7 0 192M'],
  });
}

/** Extended L2 entries (128 KiB clusters, 4 KiB subclusters) holding MIXED_WRITES. */
export function extendedL2Image(): Promise<string> {
  return qemuImage('read-extl2', {
    size: '64M',
    options: 'extended_l2=on,cluster_size=128k',
    commands: MIXED_WRITES,
  });
}
