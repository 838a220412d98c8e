// Issue 15 part 3: `repair` never makes an image worse, judged by the real qemu-img.
import { copyFile, stat, truncate } from 'node:fs/promises';
import { makeTempDir, pokeU32BE, pokeU64BE, readU64BE } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkImage } from '../src/index.js';
import {
  getRefcount,
  layout,
  OFFSET_MASK,
  setL2Entry,
  snapshotEntryOffset,
} from './support/corrupt.js';
import { qemuImage, qemuIo } from './support/qemu-fixtures.js';
import { guestHash, judgeRepair, qemuVerdict } from './support/repair-judge.js';

const temp = await makeTempDir('qcow2-repair-never-worse-');
afterAll(() => temp.remove());

/** 64 MiB, 1 MiB of data at 0: L1, refcount table, block, one L2 table, 16 data clusters last. */
let small: string;
/** 4 KiB clusters (an L2 table maps 2 MiB): data at 0 and at 8 MiB, so the second L2 table and its cluster are the file's last two. */
let twoTables: string;
/** s1 holds 256 KiB at 0; the active layer rewrote them (so s1 owns its own L2 table and data). */
let snapshotted: string;

beforeAll(async () => {
  small = await qemuImage('never-worse-small', { size: '64M', commands: ['write -P 0xaa 0 1M'] });
  twoTables = await qemuImage('never-worse-two-tables', {
    size: '16M',
    options: 'cluster_size=4096',
    commands: ['write -P 0xaa 0 64k', 'write -P 0xbb 8M 4k'],
  });
  snapshotted = await qemuImage('never-worse-snapshot', {
    size: '64M',
    commands: ['write -P 0xaa 0 256k'],
    snapshots: ['s1'],
  });
});

let counter = 0;
async function copyOf(source: string, poke: (path: string) => Promise<unknown>): Promise<string> {
  const path = temp.file(`img-${counter++}.qcow2`);
  await copyFile(source, path);
  await poke(path);
  return path;
}

/** Zeroes refcount table entry 0: the block covering the whole small image is gone, so repair rebuilds. */
async function loseRefcountBlock(path: string): Promise<void> {
  await pokeU64BE(path, (await layout(path)).refcountTableOffset, 0n);
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

describe('new metadata never lands on a referenced cluster', () => {
  it('truncated file: the rebuilt refcount structure goes after the data clusters past the end', async () => {
    const path = await copyOf(small, async (p) => {
      // Cut the last three data clusters off, and lose the refcount block: a rebuild is needed.
      await truncate(p, (await fileSize(p)) - 3 * 0x10000);
      await loseRefcountBlock(p);
    });
    const end = await fileSize(path);
    const { result, after, guestBefore, guestAfter } = await judgeRepair(path);
    expect(result.rebuilt).toBeDefined();
    // Before the fix the new block went to the first cluster past the end, where guest data maps.
    expect(result.rebuilt?.blocksCluster).toBe(end / 0x10000 + 3);
    expect(result.notes.join(' ')).toMatch(/3 clusters that tables reference past the end/);
    expect(after.errors).toBe(0);
    expect(guestAfter).toBe(guestBefore);
  });

  it("a lost L2 table's L1 entry does not end up pointing at the new refcount block", async () => {
    const path = await copyOf(twoTables, async (p) => {
      await truncate(p, (await fileSize(p)) - 2 * 4096); // the L2 table of L1 entry 4 and its data
      await loseRefcountBlock(p);
    });
    const { l1Offset } = await layout(path);
    const lostTable = Number((await readU64BE(path, l1Offset + 4 * 8)) & OFFSET_MASK);
    expect(lostTable).toBe(await fileSize(path));
    const { result, guestBefore, guestAfter } = await judgeRepair(path, {}, { undo: false });
    const newStructure = (result.rebuilt?.blocksCluster ?? 0) * 4096;
    expect(newStructure).toBeGreaterThan(lostTable);
    expect(guestAfter).toBe(guestBefore);
    // The lost table now reads as an (empty) L2 table, not as refcounts.
    expect((await checkImage(path)).counts.overlap).toBeUndefined();
  });

  it('a snapshot L2 entry past the end of the file keeps the new structure clear of it', async () => {
    const path = await copyOf(snapshotted, async (p) => {
      await qemuIo(p, 'write -P 0xbb 0 256k'); // the active layer moves off s1's L2 table
      const { clusterSize } = await layout(p);
      const end = await fileSize(p);
      const cluster = Math.ceil(end / clusterSize) + 1;
      // s1's L1 entry 0 → its own L2 table; point entry 5 one cluster past the end of the file.
      const entry = await snapshotEntryOffset(p, 0);
      const s1L1 = Number(await readU64BE(p, entry));
      const s1L2 = Number((await readU64BE(p, s1L1)) & OFFSET_MASK);
      await pokeU64BE(p, s1L2 + 5 * 8, BigInt(cluster * clusterSize));
    });
    const s1Before = await guestHash(path, ['-l', 'snapshot.name=s1']);
    const end = await fileSize(path);
    const { result } = await judgeRepair(path, { rebuildRefcounts: true });
    expect((result.rebuilt?.blocksCluster ?? 0) * 0x10000).toBeGreaterThan(end + 0x10000);
    await judgeRepair(path, { rebuildRefcounts: true }, { undo: false });
    expect(await guestHash(path, ['-l', 'snapshot.name=s1'])).toBe(s1Before);
  });
});

describe('no leak is freed while a table that could reference it is damaged', () => {
  it('a snapshot entry with an unaligned L1 offset and size 0: its clusters are kept, and it says so', async () => {
    const path = await copyOf(snapshotted, async (p) => {
      await qemuIo(p, 'write -P 0xbb 0 256k');
      const entry = await snapshotEntryOffset(p, 0);
      await pokeU64BE(p, entry, (await readU64BE(p, entry)) + 0x200n);
      await pokeU32BE(p, entry + 8, 0);
    });
    const before = await qemuVerdict(path);
    expect(before.leaks).toBeGreaterThan(0);
    const { result, after } = await judgeRepair(path);
    expect(result.leaksFixed).toBe(0);
    expect(result.leaksKept).toBe(before.leaks);
    expect(after.leaks).toBe(before.leaks);
    expect(result.refused.join(' ')).toMatch(
      /leaked clusters were kept, not freed: the snapshot table entry of snapshot 1 \(s1\) is damaged \(l1_offset=0x[0-9a-f]+: L1 table is not cluster aligned/,
    );
  });

  it('an L2 entry aliasing the L1 table: the data cluster it lost is kept', async () => {
    const path = await copyOf(small, async (p) => {
      const { l1Offset } = await layout(p);
      await setL2Entry(p, 1, (1n << 63n) | BigInt(l1Offset)); // data cluster of entry 1 now leaked
    });
    const { result, after } = await judgeRepair(path);
    expect(result.leaksKept).toBe(1);
    expect(after.leaks).toBe(1);
    expect(result.refused.join(' ')).toMatch(
      /kept, not freed: there is an entry or table overlapping/,
    );
  });

  it('a damaged bitmap directory: leaks are kept', async () => {
    const path = temp.file('bitmaps.qcow2');
    const { qemuImg } = await import('./support/qemu-fixtures.js');
    await qemuImg('create', '-q', '-f', 'qcow2', path, '64M');
    await qemuIo(path, 'write -P 0xaa 0 1M');
    await qemuImg('bitmap', '--add', path, 'b0');
    const { appendLeakedCluster } = await import('./support/corrupt.js');
    await appendLeakedCluster(path);
    const { findBitmapExtension } = await bitmapHelpers();
    const directory = await findBitmapExtension(path);
    // bitmap_directory_offset (extension data + 16): off by 0x200, unreadable as a directory.
    await pokeU64BE(path, directory + 16, (await readU64BE(path, directory + 16)) + 0x200n);
    const report = await checkImage(path);
    expect(report.counts.bitmaps ?? report.counts.header).toBeGreaterThan(0);
    const { result } = await judgeRepair(path);
    expect(result.leaksFixed).toBe(0);
    expect(result.leaksKept).toBeGreaterThan(0);
  });

  it('a rebuild with a damaged snapshot never lowers a stored refcount', async () => {
    const path = await copyOf(snapshotted, async (p) => {
      await qemuIo(p, 'write -P 0xbb 0 256k');
      const entry = await snapshotEntryOffset(p, 0);
      await pokeU64BE(p, entry, (await readU64BE(p, entry)) + 0x200n);
    });
    const { clusterSize } = await layout(path);
    const s1L1Cluster = Number(
      (await readU64BE(path, await snapshotEntryOffset(path, 0))) / BigInt(clusterSize),
    );
    const before = await getRefcount(path, s1L1Cluster);
    const { result } = await judgeRepair(path, { rebuildRefcounts: true }, { undo: false });
    expect(result.rebuilt?.keptClusters).toBeGreaterThan(0);
    expect(result.leaksKept).toBe(result.rebuilt?.keptClusters);
    expect(await getRefcount(path, s1L1Cluster)).toBe(before);
  });
});

describe('shared L2 tables', () => {
  it('two L1 entries sharing one L2 table are repaired as a whole, as qemu-img -r all leaves them', async () => {
    const path = await copyOf(twoTables, async (p) => {
      const { l1Offset } = await layout(p);
      await pokeU64BE(p, l1Offset + 8, await readU64BE(p, l1Offset)); // L1 entry 1 → entry 0's table
    });
    const { result, before, after, guestBefore, guestAfter } = await judgeRepair(path);
    expect(before.errors).toBeGreaterThan(0);
    expect(after.errors).toBe(0);
    expect(guestAfter).toBe(guestBefore);
    expect(result.notes.join(' ')).toMatch(
      /active L1 entries 0 and 1 share the L2 table at 0x[0-9a-f]+: .*COPIED flags cleared/,
    );
    expect(result.refused.join(' ')).not.toMatch(/guest data and metadata/);
  });
});

describe('"clean" only when it is; never more errors', () => {
  it('an unaligned snapshot table offset with no snapshots: qemu-img refuses the image, so repair does not call it clean', async () => {
    const path = await copyOf(small, (p) => pokeU64BE(p, 64, 0x10200n));
    const before = await qemuVerdict(path);
    expect(before.opened).toBe(false);
    expect(before.stderr).toMatch(/snapshot table offset invalid/);
    const { result } = await judgeRepair(path);
    expect(result.exitCode).toBe(5);
    expect(result.before.counts['snapshot-table']).toBe(1);
  });

  it('a data cluster mapped twice from an L2 table that also aliases itself: its refcount is not raised into COPIED errors', async () => {
    const path = await copyOf(small, async (p) => {
      const l2 = Number((await readU64BE(p, (await layout(p)).l1Offset)) & OFFSET_MASK);
      await setL2Entry(p, 1, (1n << 63n) | BigInt(l2)); // guest cluster 1 maps the L2 table itself
      await setL2Entry(p, 3, await readU64BE(p, l2 + 2 * 8)); // entries 2 and 3 share a data cluster
    });
    const { result, before, after } = await judgeRepair(path);
    expect(after.errors).toBeLessThanOrEqual(before.errors);
    expect(result.refused.join(' ')).toMatch(
      /refcounts were left alone: changing them would make COPIED flags wrong in L2 tables that share their cluster/,
    );
    // A rebuild writes every refcount anew: the same clusters keep their stored refcounts.
    const rebuilt = await judgeRepair(path, { rebuildRefcounts: true });
    expect(rebuilt.after.errors).toBeLessThanOrEqual(rebuilt.before.errors);
    expect(rebuilt.result.rebuilt?.lockedClusters).toBeGreaterThan(0);
    expect(rebuilt.result.refused.join(' ')).toMatch(/clusters kept their stored refcounts/);
  });
});

async function bitmapHelpers() {
  const { readBytes } = await import('@x/test-utils');
  return {
    /** Offset of the bitmaps header extension's data (magic 0x23852875). */
    async findBitmapExtension(path: string): Promise<number> {
      const headerLength = (await readBytes(path, 100, 4)).readUInt32BE(0);
      let at = headerLength;
      for (;;) {
        const head = await readBytes(path, at, 8);
        const magic = head.readUInt32BE(0);
        const length = head.readUInt32BE(4);
        if (magic === 0) throw new Error('no bitmaps extension');
        if (magic === 0x23852875) return at + 8;
        at += 8 + Math.ceil(length / 8) * 8;
      }
    },
  };
}
