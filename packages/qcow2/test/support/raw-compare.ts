import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { BlockDevice } from '@x/blockio';
import { cachedFixture, runPeerOk, sha256File } from '@x/test-utils';
import { PACKAGE_ROOT } from './qemu-fixtures.js';

/** sha256 of every byte the device reads, in 1 MiB requests (or `chunk`). */
export async function deviceHash(device: BlockDevice, chunk = 1 << 20): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(chunk);
  for (let offset = 0; offset < device.size; offset += chunk) {
    const length = Math.min(chunk, device.size - offset);
    hash.update(await device.read(offset, buffer.subarray(0, length)));
  }
  return hash.digest('hex');
}

/**
 * sha256 of `qemu-img convert -O raw` of the image (extra args such as `-l
 * snapshot.name=s1` go before the file names), cached with the fixture.
 */
export async function qemuRawHash(image: string, extra: string[] = []): Promise<string> {
  const recipe = JSON.stringify({ image, extra, hash: await sha256File(image) });
  const directory = await cachedFixture(PACKAGE_ROOT, 'raw-of', recipe, async (dir) => {
    const out = join(dir, 'out.raw');
    // From the image's directory: QEMU takes relative data file names relative to it.
    await runPeerOk('qemu-img', ['convert', '-O', 'raw', ...extra, image, out], {
      cwd: dirname(image),
    });
    const { writeFile, rm } = await import('node:fs/promises');
    await writeFile(join(dir, 'sha256'), await sha256File(out));
    await rm(out);
  });
  const { readFile } = await import('node:fs/promises');
  return (await readFile(join(directory, 'sha256'), 'utf8')).trim();
}
