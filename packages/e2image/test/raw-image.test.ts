import { FileDevice, MemoryDevice, type ProgressEvent } from '@x/blockio';
import { filesEqual, makeTempDir, requirePeer, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Filesystem,
  groupHasSuperblock,
  streamRawImage,
  superAndDescriptorLocation,
  writeRawImage,
  writeRawImageFile,
} from '../src/index.js';
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

  it('-r -b backup -B blocksize is byte-identical to e2fsprogs', async () => {
    const fixture = await buildFixture(recipe);
    const { backup, blockSize } = await withFilesystem(fixture.image, async (fs) => {
      let group = 1;
      while (group < fs.groupCount && !groupHasSuperblock(fs, group)) group++;
      if (group >= fs.groupCount) return { backup: undefined, blockSize: fs.blockSize };
      return { backup: superAndDescriptorLocation(fs, group).superBlock, blockSize: fs.blockSize };
    });
    if (backup === undefined) {
      // One group, no backup: e2image fails with a short read; we name the problem.
      const device = await FileDevice.open(fixture.image);
      try {
        await expect(
          Filesystem.open(device, { superblock: device.size / blockSize + 1, blockSize }),
        ).rejects.toMatchObject({ code: 'TRUNCATED' });
      } finally {
        await device.close();
      }
      return;
    }
    const theirs = temp.file(`${name}-b-theirs.raw`);
    await runPeerOk('e2image', [
      '-r',
      '-b',
      String(backup),
      '-B',
      String(blockSize),
      fixture.image,
      theirs,
    ]);
    const ours = temp.file(`${name}-b-ours.raw`);
    const device = await FileDevice.open(fixture.image);
    try {
      const fs = await Filesystem.open(device, { superblock: backup, blockSize });
      await writeRawImageFile(fs, ours);
    } finally {
      await device.close();
    }
    expect(await filesEqual(ours, theirs)).toBe(true);
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

describe('streamRawImage', () => {
  it('reports the metadata scan to onProgress, as writeRawImage does', async () => {
    requirePeer('mke2fs');
    const image = temp.file('progress.img');
    await runPeerOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', image, '4M']);
    await withFilesystem(image, async (fs) => {
      const phasesOf = async (
        write: (onProgress: (event: ProgressEvent) => void) => Promise<unknown>,
      ) => {
        const phases = new Set<string>();
        await write((event) => phases.add(event.phase));
        return [...phases];
      };
      const chunks: Uint8Array[] = [];
      const sink = {
        write: (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)) > 0,
        once: () => sink,
      };
      const streamed = await phasesOf((onProgress) => streamRawImage(fs, sink, { onProgress }));
      const written = await phasesOf((onProgress) =>
        writeRawImage(fs, new MemoryDevice(0, { zeroExtends: true }), { onProgress }),
      );
      expect(written).toContain('scan inodes');
      expect(streamed).toEqual(written);
    });
  });
});
