import { copyFile, stat, truncate } from 'node:fs/promises';
import { makeTempDir, pokeBytes, pokeU64BE, readU64BE, sha256File } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkImage,
  type PokeOptions,
  pokeImage,
  rebuildRefcounts,
  repairImage,
  setFeature,
  undoLogPath,
  undoRepair,
} from '../src/index.js';
import {
  appendLeakedCluster,
  dataCluster,
  getRefcount,
  l2Entry,
  layout,
  setIncompatibleBit,
  setL2Entry,
  setRefcount,
  snapshotEntryOffset,
} from './support/corrupt.js';
import { qemuCheck } from './support/qemu-check.js';
import { qemuImage, qemuImg, qemuIo } from './support/qemu-fixtures.js';
import { qemuRawHash } from './support/raw-compare.js';

const temp = await makeTempDir('qcow2-repair-');
let pristine: string;
let withSnapshots: string;

beforeAll(async () => {
  pristine = await qemuImage('repair-base', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M', 'write -P 0x55 8M 192k', 'write -c -P 0x11 16M 128k'],
  });
  withSnapshots = await qemuImage('repair-snapshots', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M'],
    snapshots: ['s1'],
  });
});
afterAll(() => temp.remove());

let counter = 0;
async function copyOf(
  source: string,
  poke: (path: string) => Promise<unknown> = async () => {},
): Promise<string> {
  const path = temp.file(`img-${counter++}.qcow2`);
  await copyFile(source, path);
  await poke(path);
  return path;
}

/** Repairs a corrupted copy and asserts qemu-img is happy and the guest sees the same data. */
async function repairAndVerify(path: string, options: Parameters<typeof repairImage>[1] = {}) {
  const guestBefore = await qemuRawHash(path);
  const fileBefore = await sha256File(path);
  const result = await repairImage(path, options);
  const qemu = await qemuCheck(path);
  expect(qemu.stderr).toBe('');
  expect(qemu.code).toBe(0);
  expect(result.exitCode).toBe(0);
  expect(result.after?.verdict).toBe('clean');
  expect(await qemuRawHash(path)).toBe(guestBefore);
  return { result, fileBefore, guestBefore };
}

/** Undo puts every byte back, file size included. */
async function expectUndoRestores(path: string, fileBefore: string) {
  const undone = await undoRepair(path);
  expect(undone.complete).toBe(true);
  expect(await sha256File(path)).toBe(fileBefore);
  await expect(stat(undoLogPath(path))).rejects.toMatchObject({ code: 'ENOENT' });
}

describe('repair fixes what qemu-img check -r all fixes, keeping guest data', () => {
  it('frees a leaked cluster, and undo restores the exact bytes', async () => {
    const path = await copyOf(pristine, appendLeakedCluster);
    const { result, fileBefore } = await repairAndVerify(path, { leaks: true });
    expect(result.leaksFixed).toBe(1);
    expect(result.before.exitCode).toBe(1);
    expect(result.undoLog).toBe(undoLogPath(path));
    await expectUndoRestores(path, fileBefore);
    expect((await qemuCheck(path)).code).toBe(3);
  });

  it('raises a zeroed refcount and fixes the COPIED flags it upset', async () => {
    const path = await copyOf(pristine, async (p) => setRefcount(p, await dataCluster(p, 2), 0));
    const { result, fileBefore } = await repairAndVerify(path);
    expect(result.refcountsFixed).toBe(1);
    expect(result.copiedFixed).toBe(0); // COPIED was right all along: only the refcount was wrong
    await expectUndoRestores(path, fileBefore);
  });

  it('fixes a bumped refcount (leak) and a cleared COPIED flag', async () => {
    const path = await copyOf(pristine, async (p) => {
      await setRefcount(p, await dataCluster(p, 5), 2);
      await setL2Entry(p, 6, (await l2Entry(p, 6)) & ~(1n << 63n));
    });
    const { result } = await repairAndVerify(path);
    expect(result.leaksFixed).toBe(1);
    expect(result.copiedFixed).toBe(1);
  });

  it('--copied alone leaves refcounts as they are', async () => {
    const path = await copyOf(pristine, async (p) => {
      await appendLeakedCluster(p);
      await setL2Entry(p, 6, (await l2Entry(p, 6)) & ~(1n << 63n));
    });
    const result = await repairImage(path, { copied: true });
    expect(result.copiedFixed).toBe(1);
    expect(result.leaksFixed).toBe(0);
    expect(result.exitCode).toBe(1);
    expect((await qemuCheck(path)).code).toBe(3);
  });

  it('repairs a dirty image with stale lazy refcounts and clears the dirty bit', async () => {
    const path = temp.file('dirty.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path, '16M');
    await qemuIo(path, 'write -P 1 0 64k', 'abort').catch(() => undefined);
    expect((await checkImage(path)).dirtyBit).toBe(true);
    const { result, fileBefore } = await repairAndVerify(path);
    expect(result.flagsCleared).toEqual(['dirty']);
    expect((await checkImage(path)).dirtyBit).toBe(false);
    await expectUndoRestores(path, fileBefore);
  });

  it('clears the corrupt bit of an otherwise clean image', async () => {
    const path = await copyOf(pristine, (p) => setIncompatibleBit(p, 1));
    const { result } = await repairAndVerify(path);
    expect(result.flagsCleared).toEqual(['corrupt']);
  });

  it('repairs under internal snapshots and keeps the snapshot data', async () => {
    const path = await copyOf(withSnapshots, async (p) => {
      await qemuIo(p, 'write -P 0xbb 64k 64k');
      await setRefcount(p, await dataCluster(p, 0), 1); // shared with s1: should be 2
    });
    const snapshotBefore = await qemuRawHash(path, ['-l', 'snapshot.name=s1']);
    await repairAndVerify(path);
    expect(await qemuRawHash(path, ['-l', 'snapshot.name=s1'])).toBe(snapshotBefore);
    expect(await getRefcount(path, await dataCluster(path, 0))).toBe(2);
  });
});

describe('rebuilding the refcount structure (which qemu-img -r leaks cannot)', () => {
  it('rebuilds a destroyed refcount table', async () => {
    const path = await copyOf(pristine, async (p) => {
      const { refcountTableOffset, clusterSize } = await layout(p);
      await pokeBytes(p, refcountTableOffset, Buffer.alloc(clusterSize));
    });
    expect((await checkImage(path)).exitCode).toBe(4);
    const { result, fileBefore } = await repairAndVerify(path);
    expect(result.rebuilt).toBeDefined();
    expect(result.rebuilt?.blocks).toBeGreaterThan(0);
    await expectUndoRestores(path, fileBefore);
  });

  it('rebuilds when a refcount table entry is misaligned', async () => {
    const path = await copyOf(withSnapshots, async (p) => {
      const { refcountTableOffset } = await layout(p);
      await pokeU64BE(p, refcountTableOffset, (await readU64BE(p, refcountTableOffset)) + 0x100n);
    });
    const snapshotBefore = await qemuRawHash(path, ['-l', 'snapshot.name=s1']);
    const { result } = await repairAndVerify(path, { refcounts: true });
    expect(result.rebuilt).toBeDefined();
    expect(await qemuRawHash(path, ['-l', 'snapshot.name=s1'])).toBe(snapshotBefore);
  });

  it('rebuildRefcounts works on a healthy image too (for snapshot apply)', async () => {
    const path = await copyOf(withSnapshots);
    const guest = await qemuRawHash(path);
    const result = await rebuildRefcounts(path, { undoLog: false });
    expect(result.rebuilt).toBeDefined();
    expect(result.undoLog).toBeUndefined();
    expect((await qemuCheck(path)).code).toBe(0);
    expect(await qemuRawHash(path)).toBe(guest);
  });
});

describe('repair is careful where qemu-img is not', () => {
  it('dry run changes nothing and lists the writes', async () => {
    const path = await copyOf(pristine, async (p) => {
      await appendLeakedCluster(p);
      await setRefcount(p, await dataCluster(p, 2), 0);
    });
    const before = await sha256File(path);
    const result = await repairImage(path, { dryRun: true });
    expect(result.dryRun).toBe(true);
    expect(result.writes).toBeGreaterThan(0);
    expect(result.planned.map((w) => w.reason)).toEqual([
      expect.stringMatching(/^refcount block 0/),
    ]);
    expect(await sha256File(path)).toBe(before);
    await expect(stat(undoLogPath(path))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does not "fix" an L2 entry aliasing the L1 table by bumping its refcount', async () => {
    const path = await copyOf(pristine, async (p) => {
      const { l1Offset } = await layout(p);
      await setL2Entry(p, 1, (1n << 63n) | BigInt(l1Offset));
    });
    const { l1Offset, clusterSize } = await layout(path);
    const result = await repairImage(path);
    expect(result.refused.join(' ')).toMatch(/guest data and metadata share clusters/);
    expect(await getRefcount(path, l1Offset / clusterSize)).toBe(1);
    expect(result.after?.counts.overlap).toBe(1);
    expect(result.exitCode).toBe(6);
    // qemu-img -r all would now call it clean; ours still reports the aliasing.
    expect((await qemuCheck(path)).code).toBe(2);
  });

  it('does not free the clusters of a snapshot whose L1 offset is damaged', async () => {
    const path = await copyOf(withSnapshots, async (p) => {
      await qemuIo(p, 'write -P 0xbb 0 256k'); // the active image moves away from s1's clusters
      const entry = await snapshotEntryOffset(p, 0);
      await pokeU64BE(p, entry, (await readU64BE(p, entry)) + 0x200n);
    });
    const leaksBefore = (await checkImage(path)).leaks;
    expect(leaksBefore).toBeGreaterThan(0);
    const result = await repairImage(path, { leaks: true });
    expect(result.leaksFixed).toBe(0);
    expect(result.refused.join(' ')).toMatch(
      /the snapshot table entry of snapshot 1 \(s1\) is damaged/,
    );
    expect(result.after?.leaks).toBe(leaksBefore);
  });
});

describe('undo, set-feature and poke', () => {
  it('undoes sessions newest first, back to the original bytes', async () => {
    const path = await copyOf(pristine);
    const original = await sha256File(path);
    const { l1Offset } = await layout(path);
    const first = await pokeImage(path, { offset: l1Offset, value: 0x8000000000040000n });
    expect(first.before).toMatch(/^0x8000000000/);
    const afterFirst = await sha256File(path);
    await pokeImage(path, { offset: 8, value: 0x1234n, width: 2 });
    await undoRepair(path);
    expect(await sha256File(path)).toBe(afterFirst);
    await undoRepair(path);
    expect(await sha256File(path)).toBe(original);
  });

  it('refuses to undo over later changes unless forced', async () => {
    const path = await copyOf(pristine);
    const original = await sha256File(path);
    await pokeImage(path, { offset: 8, value: 0x42n, width: 1 });
    await pokeBytes(path, 8, Buffer.from([0x43]));
    // The library names its option, not the CLI's flag.
    await expect(undoRepair(path)).rejects.toMatchObject({
      code: 'CHANGED',
      message: expect.stringMatching(/\(pass force: true to undo anyway\)$/),
    });
    await undoRepair(path, { force: true });
    expect(await sha256File(path)).toBe(original);
  });

  it('has nothing to undo (ENOENT, not CORRUPT) without a log or with a log of no sessions', async () => {
    const path = await copyOf(pristine);
    await expect(undoRepair(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await pokeImage(path, { offset: 8, value: 0x42n, width: 1 });
    // Cut the log after its 16-byte file header: a run interrupted before its session began.
    await truncate(undoLogPath(path), 16);
    await expect(undoRepair(path)).rejects.toMatchObject({
      code: 'ENOENT',
      path: undoLogPath(path),
      message: expect.stringMatching(/nothing to undo/),
    });
  });

  it('set-feature clears the corrupt bit, refuses to clear dirty over stale refcounts', async () => {
    const path = await copyOf(pristine, (p) => setIncompatibleBit(p, 1));
    const result = await setFeature(path, { clear: ['corrupt'] });
    expect(result).toMatchObject({ before: '0x2', after: '0x0', changed: true });
    expect((await checkImage(path)).exitCode).toBe(0);
    await undoRepair(path);
    expect((await checkImage(path)).corruptBit).toBe(true);

    const dirty = await copyOf(pristine, async (p) => {
      await setIncompatibleBit(p, 0);
      await setRefcount(p, await dataCluster(p, 1), 0);
    });
    await expect(setFeature(dirty, { clear: ['dirty'] })).rejects.toMatchObject({
      code: 'DIRTY',
      message: expect.stringMatching(/, or pass force: true$/),
    });
    expect((await setFeature(dirty, { clear: ['dirty'], force: true })).after).toBe('0x0');
  });

  it('poke refuses bad arguments with argument codes, writing nothing', async () => {
    const path = await copyOf(pristine);
    const original = await sha256File(path);
    const { size } = await stat(path);
    const refusals: Array<[PokeOptions, string]> = [
      [{ offset: size - 4, value: 1n }, 'OUT_OF_RANGE'],
      [{ offset: 0, value: 0x1ffn, width: 1 }, 'OUT_OF_RANGE'],
      [{ offset: 0, value: -1n, width: 1 }, 'OUT_OF_RANGE'],
      [{ offset: 0, value: 1n, width: 3 as 1 }, 'INVALID_ARGUMENT'],
      [{ offset: -8, value: 1n }, 'OUT_OF_RANGE'],
      [{ offset: 0.5, value: 1n }, 'OUT_OF_RANGE'],
      [{ offset: 2 ** 53, value: 1n }, 'UNSAFE_INTEGER'],
    ];
    for (const [options, code] of refusals) {
      const label = `offset ${options.offset}, width ${options.width}, value ${options.value}`;
      await expect(pokeImage(path, options), label).rejects.toMatchObject({ code, path });
    }
    expect(await sha256File(path)).toBe(original);
    await expect(stat(undoLogPath(path))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
