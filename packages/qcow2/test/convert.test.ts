import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { BlockIoError, FileDevice } from '@x/blockio';
import { filesEqual, makeTempDir, runPeerOk } from '@x/test-utils';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { copyThreadSettings } from '../src/convert/copy-clusters.js';
import { convertToRaw } from '../src/index.js';
import {
  backingChain,
  convertedImage,
  dataFileImage,
  denseImage,
  extendedL2Image,
  hostOrderImage,
  longCopyImage,
  snapshotImage,
} from './support/read-fixtures.js';

const temp = await makeTempDir('qcow2-convert-');
afterAll(() => temp.remove());

let counter = 0;
async function expectSameFileAsQemu(input: string, snapshot?: string) {
  const index = counter++;
  const ours = temp.file(`ours-${index}.raw`);
  const theirs = temp.file(`qemu-${index}.raw`);
  const result = await convertToRaw(input, ours, { snapshot, backingPolicy: 'allow' });
  await runPeerOk(
    'qemu-img',
    [
      'convert',
      '-O',
      'raw',
      ...(snapshot ? ['-l', `snapshot.name=${snapshot}`] : []),
      input,
      theirs,
    ],
    { cwd: dirname(input) },
  );
  expect(await filesEqual(ours, theirs)).toBe(true);
  expect(existsSync(`${ours}.partial`)).toBe(false);
  return result;
}

describe('convertToRaw writes the same file as qemu-img convert -O raw', () => {
  it('deflate and zstd compressed images', async () => {
    const result = await expectSameFileAsQemu(
      await convertedImage('converted-zlib', { compress: true }),
    );
    expect(result.inputFormat).toBe('qcow2');
    // ConvertResult's names (virtualSize, not a second bytesTotal), then raw's bytesZero.
    expect(Object.keys(result).sort()).toEqual([
      'bytesRead',
      'bytesWritten',
      'bytesZero',
      'inputFormat',
      'virtualSize',
    ]);
    expect(result.bytesWritten + result.bytesZero).toBe(result.virtualSize);
    await expectSameFileAsQemu(
      await convertedImage('converted-zstd', {
        compress: true,
        createOptions: 'compression_type=zstd',
      }),
    );
  });

  it('chains, external data files, extended L2, snapshots', async () => {
    await expectSameFileAsQemu(await backingChain('raw'));
    await expectSameFileAsQemu(await dataFileImage(true));
    await expectSameFileAsQemu(await extendedL2Image());
    await expectSameFileAsQemu(await snapshotImage(), 's1');
  });

  it('one-cluster runs out of host order and across gaps (L2 tables between data)', async () => {
    // Host order: 1M, 0, 64k, then 2M behind a new L2 table, then 6M..: the batched
    // reads must drop gaps, restart on a backwards jump and keep runs apart.
    const image = await hostOrderImage();
    await expectSameFileAsQemu(image);
  });

  it('aborts cleanly: no output and no partial file', async () => {
    const controller = new AbortController();
    controller.abort(new Error('test'));
    const out = temp.file('aborted.raw');
    await expect(
      convertToRaw(await snapshotImage(), out, { signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('a write that fails while others are in flight fails the convert and leaves no output', async () => {
    // 24 MiB of data: twelve 2 MiB writes, several in flight at once (WriteBehind).
    const image = await denseImage();
    const out = temp.file('write-fails.raw');
    const failure = new BlockIoError('EIO', 'injected write failure', { path: out });
    const write = FileDevice.prototype.write;
    let writes = 0;
    // The third write fails once a fourth has started (so it is in flight meanwhile);
    // a copy that waited for each write would never start one (the 5 s ends that wait).
    let fourthStarted = () => {};
    const fourth = new Promise<void>((resolve) => {
      fourthStarted = resolve;
      setTimeout(resolve, 5000).unref();
    });
    // The path through WriteBehind (copies smaller than a batch of the copy threads,
    // targets that are not a whole file): convert-threads.test.ts has the threads'.
    copyThreadSettings.threads = 0;
    const spy = vi.spyOn(FileDevice.prototype, 'write').mockImplementation(async function (
      this: FileDevice,
      offset,
      data,
    ) {
      const index = ++writes;
      if (index === 4) fourthStarted();
      if (index === 3) {
        await fourth;
        throw failure;
      }
      return write.call(this, offset, data);
    });
    try {
      await expect(convertToRaw(image, out)).rejects.toBe(failure);
    } finally {
      spy.mockRestore();
      copyThreadSettings.threads = undefined;
    }
    expect(writes).toBeGreaterThan(3);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('a read that fails while others are in flight fails the convert and leaves no output', async () => {
    const image = await denseImage();
    const out = temp.file('read-fails.raw');
    const failure = new BlockIoError('EIO', 'injected read failure', { path: image });
    const read = FileDevice.prototype.read as (
      offset: number,
      into: Uint8Array,
    ) => Promise<unknown>;
    let dataReads = 0;
    copyThreadSettings.threads = 0; // the WriteBehind path, as above
    const spy = vi.spyOn(FileDevice.prototype, 'read').mockImplementation(async function (
      this: FileDevice,
      offset: number,
      into: unknown,
    ) {
      // The second 2 MiB run of guest data.
      if (typeof into !== 'number' && (into as Uint8Array).byteLength >= 1 << 20) {
        if (++dataReads === 2) throw failure;
      }
      return read.call(this, offset, into as Uint8Array);
    } as typeof FileDevice.prototype.read);
    try {
      await expect(convertToRaw(image, out)).rejects.toBe(failure);
    } finally {
      spy.mockRestore();
      copyThreadSettings.threads = undefined;
    }
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('gives the event loop turns during a copy whose reads and writes complete synchronously', async () => {
    // Abort from a macrotask scheduled once the copy has started: a copy that never
    // yields would finish before the abort could run (and so would SIGINT handlers).
    const image = await longCopyImage();
    const controller = new AbortController();
    let scheduled = false;
    const out = temp.file('interrupted.raw');
    await expect(
      convertToRaw(image, out, {
        io: 'sync',
        signal: controller.signal,
        onProgress: () => {
          if (scheduled) return;
          scheduled = true;
          setImmediate(() => controller.abort(new Error('interrupted')));
        },
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });
});
