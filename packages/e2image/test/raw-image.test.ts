import { FileDevice } from '@x/blockio';
import { filesEqual, makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Filesystem, writeRawImageFile } from '../src/index.js';
import { buildFixture, MATRIX } from './support/fixtures.js';

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('e2image-raw-');
});
afterAll(async () => {
  await temp.remove();
});

async function withFilesystem<T>(image: string, body: (fs: Filesystem) => Promise<T>): Promise<T> {
  const device = await FileDevice.open(image);
  try {
    return await body(await Filesystem.open(device));
  } finally {
    await device.close();
  }
}

describe.each(MATRIX.map((recipe) => [recipe.name, recipe] as const))('%s', (name, recipe) => {
  it('-r output is byte-identical to e2fsprogs e2image -r', async () => {
    const fixture = await buildFixture(recipe);
    const out = temp.file(`${name}.raw`);
    await withFilesystem(fixture.image, (fs) => writeRawImageFile(fs, out));
    expect(await filesEqual(out, fixture.peerRaw)).toBe(true);
  });

  it('-rs output is byte-identical to e2fsprogs e2image -rs', async () => {
    const fixture = await buildFixture(recipe);
    const out = temp.file(`${name}-s.raw`);
    await withFilesystem(fixture.image, (fs) => writeRawImageFile(fs, out, { scramble: true }));
    expect(await filesEqual(out, fixture.peerScrambled)).toBe(true);
  });

  if (recipe.allData) {
    it('-ra output is byte-identical to e2fsprogs e2image -ra', async () => {
      const fixture = await buildFixture(recipe);
      const out = temp.file(`${name}-a.raw`);
      await withFilesystem(fixture.image, (fs) => writeRawImageFile(fs, out, { allData: true }));
      expect(await filesEqual(out, fixture.peerAllData as string)).toBe(true);
    });
  }
});
