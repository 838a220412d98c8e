import { access, copyFile, readFile } from 'node:fs/promises';
import { makeTempDir, pokeBytes, pokeU64BE, readU64BE, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySnapshot, checkImage, undoLogPath, undoRepair } from '../../src/index.js';
import {
  layout,
  OFFSET_MASK,
  setIncompatibleBit,
  snapshotEntryOffset,
} from '../support/corrupt.js';
import { qemuImg, qemuIo } from '../support/qemu-fixtures.js';
import { expectClean, firstDifference, guestBytes } from './support.js';

/**
 * Rolling a damaged image back to its last good snapshot. Each image is made
 * by qemu-img/qemu-io: data, snapshot s1, then more writes, so the active L2
 * table is the active state's own copy (not shared with s1). The damage is
 * poked into the active state only, and after the apply qemu-img must call
 * the image clean and read exactly what s1 held before the damage.
 */
interface Base {
  image: string;
  /** Guest bytes of s1, as qemu-img read them before any damage. */
  snapshotData: Buffer;
}

const undoLogExists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

let dir: TempDir;
let n = 0;
const bases = new Map<string, Base>();

async function makeBase(options: string): Promise<Base> {
  const image = dir.file(`base-${options.replace(/\W+/g, '-')}.qcow2`);
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', options, image, '64M');
  await qemuIo(image, 'write -P 1 0 3M', 'write -P 5 40M 64k', 'write -c -P 6 48M 64k');
  await qemuImg('snapshot', '-c', 's1', image);
  await qemuIo(image, 'write -P 2 0 1M', 'write -P 3 32M 1M');
  await qemuImg('convert', '-O', 'raw', '-l', 's1', image, `${image}.s1.raw`);
  return { image, snapshotData: await readFile(`${image}.s1.raw`) };
}

beforeAll(async () => {
  dir = await makeTempDir('qcow2-rescue-');
  for (const options of ['compat=1.1', 'compat=0.10']) bases.set(options, await makeBase(options));
});
afterAll(() => dir.remove());

async function damaged(
  options: string,
  damage: (path: string) => Promise<void>,
): Promise<{ path: string; base: Base; before: Buffer }> {
  const base = bases.get(options) as Base;
  const path = dir.file(`rescue-${n++}.qcow2`);
  await copyFile(base.image, path);
  await damage(path);
  return { path, base, before: await readFile(path) };
}

/** The active L2 table of L1 index 0, which the writes after s1 made the active state's own. */
async function activeL2Table(path: string): Promise<number> {
  const { l1Offset } = await layout(path);
  const active = Number((await readU64BE(path, l1Offset)) & OFFSET_MASK);
  const snapshotL1 = Number(await readU64BE(path, (await snapshotEntryOffset(path, 0)) + 0));
  const snapshotL2 = Number((await readU64BE(path, snapshotL1)) & OFFSET_MASK);
  expect(active).not.toBe(snapshotL2);
  return active;
}

const cases: Array<{
  name: string;
  options: string;
  kind: string;
  damage: (path: string) => Promise<void>;
}> = [
  {
    name: 'an active L1 entry points past the end of the file',
    options: 'compat=1.1',
    kind: 'l1-entry',
    damage: async (path) => {
      const { l1Offset } = await layout(path);
      await pokeU64BE(path, l1Offset, 0x8000_0000_4000_0000n);
    },
  },
  {
    name: 'the active L2 table is garbage',
    options: 'compat=1.1',
    kind: 'l2-entry',
    damage: async (path) => {
      const { clusterSize } = await layout(path);
      await pokeBytes(path, await activeL2Table(path), Buffer.alloc(clusterSize, 0xa5));
    },
  },
  {
    name: 'the active L2 table is garbage (version 2 image)',
    options: 'compat=0.10',
    kind: 'l2-entry',
    damage: async (path) => {
      const { clusterSize } = await layout(path);
      await pokeBytes(path, await activeL2Table(path), Buffer.alloc(clusterSize, 0x5c));
    },
  },
  {
    name: "the header's active L1 offset is unaligned",
    options: 'compat=1.1',
    kind: 'l1-table',
    damage: async (path) => {
      const { l1Offset } = await layout(path);
      await pokeU64BE(path, 40, BigInt(l1Offset + 0x100));
    },
  },
  {
    name: 'the refcount table is destroyed',
    options: 'compat=1.1',
    kind: 'refcount-table-entry',
    damage: async (path) => {
      const { refcountTableOffset, clusterSize } = await layout(path);
      await pokeBytes(path, refcountTableOffset, Buffer.alloc(clusterSize, 0x5a));
    },
  },
];

describe('snapshot apply rescues a damaged image', () => {
  for (const { name, options, kind, damage } of cases) {
    it(`when ${name}`, async () => {
      const { path, base, before } = await damaged(options, damage);
      const applied = await applySnapshot(path, 's1');
      expect(applied).toMatchObject({ id: '1', name: 's1' });
      expect(applied.rescue?.damage.map((entry) => entry.kind)).toContain(kind);
      expect(applied.rescue).toMatchObject({
        exitCode: 0,
        undoLog: undoLogPath(path),
        after: { verdict: 'clean' },
      });
      expect(applied.rescue?.rebuilt?.blocks).toBeGreaterThan(0);
      await expectClean(path);
      expect((await checkImage(path)).exitCode).toBe(0);
      expect(firstDifference(await guestBytes(path, `${path}.raw`), base.snapshotData)).toBe(-1);

      // The snapshot is still there, and undo puts every byte of the damaged image back.
      expect((await qemuImg('snapshot', '-l', path)).stdout).toMatch(/\b1\s+s1\b/);
      const undone = await undoRepair(path);
      expect(undone.description).toMatch(/^snapshot apply 1 \(rescue/);
      expect(firstDifference(await readFile(path), before)).toBe(-1);
      expect(await undoLogExists(undoLogPath(path))).toBe(false);
    });
  }

  it('clears the corrupt bit QEMU set when it met the damage', async () => {
    const { path, base } = await damaged('compat=1.1', async (image) => {
      const { clusterSize } = await layout(image);
      await pokeBytes(image, await activeL2Table(image), Buffer.alloc(clusterSize, 0xee));
      await setIncompatibleBit(image, 1);
    });
    const applied = await applySnapshot(path, 's1');
    expect(applied.rescue?.damage.map((entry) => entry.kind)).toEqual(['corrupt-bit', 'l2-entry']);
    expect(applied.rescue?.flagsCleared).toEqual(['corrupt']);
    await expectClean(path);
    expect((await readU64BE(path, 72)) & 2n).toBe(0n);
    expect(firstDifference(await guestBytes(path, `${path}.raw`), base.snapshotData)).toBe(-1);
  });

  it('leaves a healthy image to the qemu-img way (no rescue, no undo log)', async () => {
    const { path } = await damaged('compat=1.1', async () => {});
    const applied = await applySnapshot(path, 's1');
    expect(applied.rescue).toBeUndefined();
    expect(await undoLogExists(undoLogPath(path))).toBe(false);
    await expectClean(path);
  });
});

describe('snapshot apply refuses when the snapshot is damaged too', () => {
  const refusals: Array<{ name: string; damage: (path: string) => Promise<void>; text: RegExp }> = [
    {
      name: "the snapshot's L2 table is garbage",
      damage: async (path) => {
        const snapshotL1 = Number(await readU64BE(path, await snapshotEntryOffset(path, 0)));
        const l2 = Number((await readU64BE(path, snapshotL1)) & OFFSET_MASK);
        await pokeBytes(path, l2, Buffer.alloc(256, 0x77));
      },
      text: /L2 table of snapshot 1 \(L1 index 0\) entry 0/,
    },
    {
      name: "the snapshot's L1 entry points past the end of the file",
      damage: async (path) => {
        const snapshotL1 = Number(await readU64BE(path, await snapshotEntryOffset(path, 0)));
        await pokeU64BE(path, snapshotL1, 0x4000_0000n);
      },
      text: /snapshot 1 \(s1\) L1 table entry 0 .*past the end of the file/,
    },
    {
      name: "the snapshot's L1 table offset is unaligned",
      damage: async (path) => {
        const entry = await snapshotEntryOffset(path, 0);
        await pokeU64BE(path, entry, (await readU64BE(path, entry)) + 8n);
      },
      text: /not cluster aligned/,
    },
    {
      name: "the snapshot's data overlaps the snapshot table",
      damage: async (path) => {
        const { snapshotsOffset } = await layout(path);
        const snapshotL1 = Number(await readU64BE(path, await snapshotEntryOffset(path, 0)));
        const l2 = Number((await readU64BE(path, snapshotL1)) & OFFSET_MASK);
        await pokeU64BE(path, l2 + 8, BigInt(snapshotsOffset));
      },
      text: /shares host cluster \d+ \(0x[0-9a-f]+\) with the snapshot table/,
    },
  ];

  for (const { name, damage, text } of refusals) {
    it(`when ${name}: typed error, image untouched`, async () => {
      const { path, before } = await damaged('compat=1.1', async (image) => {
        await pokeU64BE(image, (await layout(image)).l1Offset, 0x8000_0000_4000_0000n);
        await damage(image);
      });
      const failure = applySnapshot(path, 's1');
      await expect(failure).rejects.toMatchObject({ code: 'SNAPSHOT_DAMAGED', message: text });
      expect(firstDifference(await readFile(path), before)).toBe(-1);
      expect(await undoLogExists(undoLogPath(path))).toBe(false);
    });
  }

  it('names a missing snapshot even when the image is damaged', async () => {
    const { path, before } = await damaged('compat=1.1', async (image) => {
      await pokeU64BE(image, (await layout(image)).l1Offset, 0x8000_0000_4000_0000n);
    });
    await expect(applySnapshot(path, 'nope')).rejects.toMatchObject({
      code: 'NO_SUCH_SNAPSHOT',
      message: /1 "s1"/,
    });
    expect(firstDifference(await readFile(path), before)).toBe(-1);
  });
});
