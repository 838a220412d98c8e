import { FileDevice } from '@x/blockio';
import type { Qcow2Image } from '@x/qcow2';
import { filesEqual, makeTempDir, runPeer, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Filesystem,
  openSource,
  writeDeviceToRawFile,
  writeQcow2Image,
  writeQcow2ToRawFile,
  writeRawImageFile,
} from '../src/index.js';
import { buildFixture, MATRIX } from './support/fixtures.js';

let temp: TempDir;
beforeAll(async () => {
  temp = await makeTempDir('e2image-qcow2src-');
});
afterAll(async () => {
  await temp.remove();
});

describe.each(MATRIX.map((recipe) => [recipe.name, recipe] as const))(
  '%s inside QCOW2',
  (name, recipe) => {
    it('a filesystem read through qemu-img convert -O qcow2 gives the same -r and -rs images as the raw one', async () => {
      const fixture = await buildFixture(recipe);
      const qcow2 = temp.file(`${name}.qcow2`);
      await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', fixture.image, qcow2]);
      const source = await openSource(qcow2);
      try {
        expect(source.format).toBe('qcow2');
        const fs = await Filesystem.open(source.device);
        const raw = temp.file(`${name}-via-qcow2.raw`);
        await writeRawImageFile(fs, raw);
        expect(await filesEqual(raw, fixture.peerRaw)).toBe(true);
        const scrambled = temp.file(`${name}-via-qcow2-s.raw`);
        await writeRawImageFile(fs, scrambled, { scramble: true });
        expect(await filesEqual(scrambled, fixture.peerScrambled)).toBe(true);
      } finally {
        await source.close();
      }
    });

    it("converting e2fsprogs' -Q image to raw equals e2fsprogs' own conversion", async () => {
      const fixture = await buildFixture(recipe);
      const qcow2 = temp.file(`${name}-e2image.qcow2`);
      await runPeerOk('e2image', ['-Q', fixture.image, qcow2]);
      const theirs = temp.file(`${name}-e2image-back.raw`);
      await runPeerOk('e2image', ['-r', qcow2, theirs]);
      const source = await openSource(qcow2);
      const ours = temp.file(`${name}-ours-back.raw`);
      try {
        await writeQcow2ToRawFile(source.qcow2 as Qcow2Image, ours);
      } finally {
        await source.close();
      }
      expect(await filesEqual(ours, theirs)).toBe(true);
      expect(await filesEqual(ours, fixture.peerRaw)).toBe(true);
    });
  },
);

describe.each(MATRIX.map((recipe) => [recipe.name, recipe] as const))(
  '%s as -Q',
  (name, recipe) => {
    it("-Q passes qemu-img check without leaks and e2fsprogs' e2image -r reads it back to its own -r output", async () => {
      const fixture = await buildFixture(recipe);
      const qcow2 = temp.file(`${name}-ours.qcow2`);
      const device = await FileDevice.open(fixture.image);
      try {
        const result = await writeQcow2Image(await Filesystem.open(device), qcow2);
        expect(result.blocks).toBeGreaterThan(0);
      } finally {
        await device.close();
      }
      const check = await runPeer('qemu-img', ['check', qcow2]);
      expect(check.code, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toContain('No errors were found on the image.');
      expect(check.stdout).not.toContain('leaked');
      const back = temp.file(`${name}-ours-back.raw`);
      await runPeerOk('e2image', ['-r', qcow2, back]);
      expect(await filesEqual(back, fixture.peerRaw)).toBe(true);
    });
  },
);

describe('QCOW2 → raw for any QCOW2 image', () => {
  it.each([
    ['plain', []],
    ['extended L2', ['-o', 'extended_l2=on,cluster_size=64k']],
  ])(
    '%s: equals qemu-img convert -O raw for compressed, zero and discarded clusters, by both paths',
    async (label, options) => {
      const image = temp.file(`mixed-${label}.qcow2`);
      await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...options, image, '32M']);
      await runPeerOk('qemu-io', [
        '-c',
        'write -P 0x5a 0 3M',
        '-c',
        'write -P 0x33 5M 5k',
        '-c',
        'write -z 8M 64k',
        '-c',
        'write -c -P 0x11 12M 128k',
        '-c',
        'write -P 0 20M 64k',
        '-c',
        'discard 1M 64k',
        image,
      ]);
      const theirs = temp.file(`mixed-${label}-qemu.raw`);
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, theirs]);
      const source = await openSource(image);
      const generic = temp.file(`mixed-${label}-generic.raw`);
      const clusters = temp.file(`mixed-${label}-clusters.raw`);
      try {
        await writeDeviceToRawFile(source.device, generic);
        await writeQcow2ToRawFile(source.qcow2 as Qcow2Image, clusters);
      } finally {
        await source.close();
      }
      expect(await filesEqual(generic, theirs)).toBe(true);
      expect(await filesEqual(clusters, theirs)).toBe(true);
    },
  );

  it('with a backing file allowed, the conversion reads through it', async () => {
    const base = temp.file('convert-base.qcow2');
    const overlay = temp.file('convert-overlay.qcow2');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '4M']);
    await runPeerOk('qemu-io', ['-c', 'write -P 0x21 0 2M', base]);
    await createOverlay(base, overlay);
    await runPeerOk('qemu-io', ['-c', 'write -P 0x42 1M 64k', overlay]);
    const theirs = temp.file('overlay-qemu.raw');
    await runPeerOk('qemu-img', ['convert', '-O', 'raw', overlay, theirs]);
    const source = await openSource(overlay, { backingPolicy: 'allow' });
    const ours = temp.file('overlay-ours.raw');
    try {
      await writeQcow2ToRawFile(source.qcow2 as Qcow2Image, ours);
    } finally {
      await source.close();
    }
    expect(await filesEqual(ours, theirs)).toBe(true);
  });

  it('refuses a backing file unless allowed', async () => {
    const base = temp.file('base.qcow2');
    const overlay = temp.file('overlay.qcow2');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '4M']);
    await createOverlay(base, overlay);
    await expect(openSource(overlay)).rejects.toMatchObject({ code: 'BACKING_DENIED' });
    const allowed = await openSource(overlay, { backingPolicy: 'allow' });
    expect(allowed.device.size).toBe(4 << 20);
    await allowed.close();
  });
});

/** A qcow2 overlay on `base` made by qemu-img. */
async function createOverlay(base: string, overlay: string): Promise<void> {
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
}
