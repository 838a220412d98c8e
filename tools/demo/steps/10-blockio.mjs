// blockio: a sparse copy of a 1 GiB disk image with 64 MiB of scattered data, with
// progress, verified byte for byte, then the safety net (no silent overwrite).
import { createCipheriv } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { copy, FileDevice, withOutputFile } from '@x/blockio';

const MiB = 2 ** 20;
const SIZE = 1024 * MiB;

export default async function blockioDemo(demo) {
  const sample = join(demo.directory, 'disk.img');
  const copyPath = join(demo.directory, 'disk-copy.img');

  demo.heading('blockio: sparse copy of a 1 GiB image');
  const data = await makeSample(sample);
  const source = await FileDevice.open(sample);
  try {
    let extents = 0;
    for await (const extent of source.extents()) if (extent.kind === 'data') extents++;
    demo.say(
      `sample ${sample}: ${demo.formatSize(SIZE)} with ${demo.formatSize(data)} written (64 runs of data, 1 of zeros), ` +
        `${demo.formatSize(await allocated(sample))} allocated, ${extents} data extents`,
    );

    const [result, ms] = await demo.timed(() =>
      withOutputFile(copyPath, { size: source.size }, (output) =>
        copy(source, output.device, { onProgress: demo.progress() }),
      ),
    );
    demo.close();
    demo.say(
      `copied in ${ms} ms: read ${demo.formatSize(result.bytesRead)}, wrote ` +
        `${demo.formatSize(result.bytesWritten)}, skipped ${demo.formatSize(result.bytesZero)} of holes and zeros`,
    );
    demo.say(`copy ${copyPath}: ${demo.formatSize(await allocated(copyPath))} allocated`);

    const target = await FileDevice.open(copyPath);
    try {
      if (!(await identical(source, target))) throw new Error('the copy differs from the source');
    } finally {
      await target.close();
    }
    demo.say(`verified: all ${demo.formatSize(SIZE)} identical, byte for byte`);

    try {
      await withOutputFile(copyPath, {}, async () => {});
      throw new Error('an existing output was overwritten without being asked');
    } catch (error) {
      if (error?.code !== 'EEXIST') throw error;
      demo.say(`copying again onto it is refused: ${error.code}: ${error.message}`);
    }
  } finally {
    await source.close();
  }
}

/** 64 runs of 1 MiB of random data at spread-out offsets; the rest is a hole. */
async function makeSample(path) {
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 9));
  const handle = await open(path, 'w');
  try {
    await handle.truncate(SIZE);
    for (let run = 0; run < 64; run++) {
      const offset = (run * 16 + ((run * 7) % 13)) * MiB;
      await handle.write(keystream.update(Buffer.alloc(MiB)), 0, MiB, offset);
    }
    // Zeros written on purpose are allocated in the source, but need not be in a copy.
    await handle.write(Buffer.alloc(MiB), 0, MiB, 1000 * MiB);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return 65 * MiB;
}

async function allocated(path) {
  return (await stat(path)).blocks * 512;
}

async function identical(a, b) {
  if (a.size !== b.size) return false;
  const left = Buffer.allocUnsafe(4 * MiB);
  const right = Buffer.allocUnsafe(4 * MiB);
  for (let offset = 0; offset < a.size; offset += left.byteLength) {
    const length = Math.min(left.byteLength, a.size - offset);
    await a.read(offset, left.subarray(0, length));
    await b.read(offset, right.subarray(0, length));
    if (!left.subarray(0, length).equals(right.subarray(0, length))) return false;
  }
  return true;
}
