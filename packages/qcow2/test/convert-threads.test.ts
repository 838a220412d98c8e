import { existsSync } from 'node:fs';
import { copyFile, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BlockIoError } from '@x/blockio';
import { filesEqual, makeTempDir, runPeerOk } from '@x/test-utils';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { copyThreadSettings } from '../src/convert/copy-clusters.js';
import { copyThreadCounts } from '../src/convert/copy-threads.js';
import { convertToRaw, copyToRawFile, openQcow2 } from '../src/index.js';
import { qemuImage } from './support/qemu-fixtures.js';
import {
  convertedImage,
  dataFileImage,
  denseImage,
  extendedL2Image,
  hostOrderImage,
  longCopyImage,
} from './support/read-fixtures.js';

// The copy threads (copy-threads.ts) start once a batch of windows is full: small
// batches here so that test images go through them.
const defaults = { ...copyThreadSettings };
afterEach(() => {
  Object.assign(copyThreadSettings, defaults);
  expect(copyThreadCounts().live).toBe(0);
});
const temp = await makeTempDir('qcow2-convert-threads-');
afterAll(() => temp.remove());

let counter = 0;
async function convertBothWays(input: string) {
  const index = counter++;
  const ours = temp.file(`threads-${index}.raw`);
  const inline = temp.file(`inline-${index}.raw`);
  const theirs = temp.file(`qemu-${index}.raw`);
  Object.assign(copyThreadSettings, {
    threads: 2,
    batchBytes: 4 << 10,
    windowSize: 64 << 10,
    copyWhileStarting: false,
  });
  const started = copyThreadCounts().started;
  const threaded = await convertToRaw(input, ours, { backingPolicy: 'allow' });
  expect(copyThreadCounts().started).toBeGreaterThan(started);
  Object.assign(copyThreadSettings, { threads: 0 });
  const behind = await convertToRaw(input, inline, { backingPolicy: 'allow' });
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', input, theirs], { cwd: dirname(input) });
  expect(await filesEqual(ours, theirs)).toBe(true);
  expect(await filesEqual(inline, theirs)).toBe(true);
  // The same clusters are written, only elsewhere (windows of other sizes read other gaps).
  expect({ ...threaded, bytesRead: 0 }).toEqual({ ...behind, bytesRead: 0 });
  expect(threaded.bytesRead).toBeGreaterThanOrEqual(threaded.bytesWritten);
  return threaded;
}

describe('convert -O raw through the copy threads', () => {
  it('writes what qemu-img writes: gaps, host order, small and large clusters, compressed beside plain', async () => {
    await convertBothWays(await hostOrderImage());
    // Clusters larger than a window (2 MiB against 64 KiB) and smaller than a sector.
    await convertBothWays(
      await convertedImage('converted-plain-2M', { createOptions: 'cluster_size=2M' }),
    );
    await convertBothWays(
      await convertedImage('converted-plain-512', { createOptions: 'cluster_size=512' }),
    );
    // Compressed clusters (inflated on this thread's pool) beside plain ones on the threads.
    const mixed = await convertBothWays(await convertedImage('converted-zlib', { compress: true }));
    expect(mixed.bytesWritten).toBeGreaterThan(0);
    await convertBothWays(await dataFileImage(true));
    await convertBothWays(await extendedL2Image());
    // Zero clusters inside data stay holes, as in qemu-img's output.
    const zeros = await convertBothWays(
      await qemuImage('convert-zero-data', {
        size: '4M',
        commands: ['write -P 7 0 1M', 'write -P 0 256k 128k', 'write -P 8 2M 64k'],
      }),
    );
    expect(zeros.bytesWritten).toBe((1 << 20) - (128 << 10) + (64 << 10));
  });

  it('while the threads start up, this thread copies: the output is the same', async () => {
    const image = await denseImage();
    Object.assign(copyThreadSettings, { batchBytes: 1 << 20 });
    const ours = temp.file('while-starting.raw');
    const theirs = temp.file('while-starting-qemu.raw');
    const result = await convertToRaw(image, ours);
    await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, theirs]);
    expect(await filesEqual(ours, theirs)).toBe(true);
    expect(result.bytesWritten).toBe(24 << 20);
  });

  it('a write error on a thread fails the convert with a typed error and leaves no output', async () => {
    const image = await denseImage();
    Object.assign(copyThreadSettings, {
      batchBytes: 1 << 20,
      copyWhileStarting: false,
      faults: { failWriteAt: 10 << 20 },
    });
    const out = temp.file('thread-write-fails.raw');
    const error = await convertToRaw(image, out).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({ code: 'EIO', path: out });
    // The first thread to reach the failing range reports it.
    expect((error as BlockIoError).offset).toBeGreaterThanOrEqual(10 << 20);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('an image file that shrinks during the copy gives SHORT_READ and leaves no output', async () => {
    const fixture = await denseImage();
    const input = temp.file('shrinks.qcow2');
    await copyFile(fixture, input);
    Object.assign(copyThreadSettings, { batchBytes: 1 << 20, copyWhileStarting: false });
    const image = await openQcow2(input);
    const out = temp.file('shrinks.raw');
    try {
      // The tables still point at data past the new end (they were read at open).
      await truncate(input, 12 << 20);
      await expect(copyToRawFile(image, out)).rejects.toMatchObject({
        code: 'SHORT_READ',
        path: input,
      });
    } finally {
      await image.close();
    }
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('Ctrl-C while threads copy: ABORTED, every thread ended, no output', async () => {
    const image = await longCopyImage();
    Object.assign(copyThreadSettings, { batchBytes: 1 << 20 });
    const controller = new AbortController();
    const out = temp.file('thread-abort.raw');
    let aborting = false;
    await expect(
      convertToRaw(image, out, {
        signal: controller.signal,
        onProgress: (event) => {
          // Once the threads are under way (their first batches are out).
          if (aborting || event.done < 32 << 20) return;
          aborting = true;
          expect(copyThreadCounts().live).toBeGreaterThan(0);
          controller.abort(new Error('interrupted'));
        },
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(aborting).toBe(true);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });
});
