import { copyFile, truncate } from 'node:fs/promises';
import { makeTempDir, pokeU32BE, pokeU64BE, readU64BE } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  type CheckMode,
  type CheckReport,
  checkImage,
  type FindingKind,
  formatCheckReport,
  Qcow2Error,
} from '../src/index.js';
import {
  appendLeakedCluster,
  dataCluster,
  l2Entry,
  l2EntryOffset,
  layout,
  OFFSET_MASK,
  setIncompatibleBit,
  setL2Entry,
  setRefcount,
  snapshotEntryOffset,
} from './support/corrupt.js';
import { qemuCheck } from './support/qemu-check.js';
import { qemuImage } from './support/qemu-fixtures.js';

const temp = await makeTempDir('qcow2-check-');
let pristine: string;
let withSnapshots: string;

beforeAll(async () => {
  pristine = await qemuImage('check-base', { size: '64M', commands: ['write -P 0xaa 0 1M'] });
  withSnapshots = await qemuImage('check-snapshots', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M'],
    snapshots: ['s1', 's2'],
  });
});
afterAll(() => temp.remove());

let counter = 0;
async function corrupted(
  source: string,
  poke: (path: string) => Promise<unknown>,
): Promise<string> {
  const path = temp.file(`img-${counter++}.qcow2`);
  await copyFile(source, path);
  await poke(path);
  return path;
}

const kinds = (report: CheckReport) => Object.keys(report.counts).sort();
const findingsOf = (report: CheckReport, kind: FindingKind) =>
  report.findings.filter((finding) => finding.kind === kind);

/** Our leak and refcount-error findings agree with qemu-img's lines, cluster by cluster. */
async function expectSameRefcountFindings(path: string, report: CheckReport): Promise<void> {
  const qemu = await qemuCheck(path);
  const ours = (kind: FindingKind) =>
    new Map(findingsOf(report, kind).map((f) => [f.cluster as number, [f.refcount, f.reference]]));
  expect(ours('leak')).toEqual(qemu.leaked);
  expect(ours('refcount-error')).toEqual(qemu.errors);
  expect(report.leaks).toBe((qemu.json?.leaks as number | undefined) ?? 0);
  expect(report['image-end-offset']).toBe(qemu.json?.['image-end-offset']);
  expect(report['allocated-clusters']).toBe(qemu.json?.['allocated-clusters']);
  expect(report['fragmented-clusters']).toBe(qemu.json?.['fragmented-clusters'] ?? 0);
  expect(report['total-clusters']).toBe(qemu.json?.['total-clusters']);
}

describe('check on clean images', () => {
  it('reports a qemu-made image clean, with qemu-img check figures', async () => {
    const report = await checkImage(pristine);
    expect(report.exitCode).toBe(0);
    expect(report.verdict).toBe('clean');
    expect(report.findings).toEqual([]);
    const qemu = await qemuCheck(pristine);
    expect(qemu.code).toBe(0);
    await expectSameRefcountFindings(pristine, report);
    expect(report.preallocation).toBe('off');
  });

  it('reports snapshots and copy-on-write growth', async () => {
    const path = await corrupted(withSnapshots, async () => {});
    const before = await checkImage(path);
    expect(before.exitCode).toBe(0);
    expect(before.snapshots).toBe(2);
    expect(before.copyOnWrite).toEqual({ clusters: 0, bytes: 0 });
    await expectSameRefcountFindings(path, before);
  });

  for (const [name, options, size] of [
    ['metadata', 'preallocation=metadata', '16M'],
    ['full', 'preallocation=full', '16M'],
  ] as const) {
    it(`detects preallocation=${name}`, async () => {
      const image = await qemuImage(`check-prealloc-${name}`, { size, options });
      const report = await checkImage(image);
      expect(report.exitCode).toBe(0);
      expect(report.preallocation).toBe(name);
      await expectSameRefcountFindings(image, report);
    });
  }
});

describe('check agrees with qemu-img on every kind of image qemu-img makes', () => {
  const data = [
    'write -P 0x5a 0 3M',
    'write -z 8M 64k',
    'write -c -P 0x11 12M 128k',
    'discard 4M 64k',
  ];
  const recipes: Array<
    [string, { size: string; options?: string; commands?: string[]; snapshots?: string[] }]
  > = [
    [
      'v2',
      {
        size: '64M',
        options: 'compat=0.10',
        commands: ['write -P 0x5a 0 3M', 'write -c -P 0x11 12M 128k'],
      },
    ],
    ['v3 with zero and compressed clusters', { size: '64M', commands: data }],
    ['512-byte clusters', { size: '16M', options: 'cluster_size=512', commands: data.slice(0, 3) }],
    [
      '2 MiB clusters',
      {
        size: '64M',
        options: 'cluster_size=2M',
        commands: [
          'write -P 0x5a 0 3M',
          'write -z 8M 2M',
          'write -c -P 0x11 12M 2M',
          'discard 4M 2M',
        ],
      },
    ],
    ['1-bit refcounts', { size: '64M', options: 'refcount_bits=1', commands: data }],
    ['64-bit refcounts', { size: '64M', options: 'refcount_bits=64', commands: data }],
    ['zstd', { size: '64M', options: 'compression_type=zstd', commands: data }],
    [
      'extended L2',
      {
        size: '64M',
        options: 'extended_l2=on,cluster_size=128k',
        commands: ['write -P 1 4k 4k', 'write -z 8k 4k', 'discard 0 4k', 'write -c -P 2 1M 128k'],
      },
    ],
    ['lazy refcounts (clean)', { size: '64M', options: 'lazy_refcounts=on', commands: data }],
    ['snapshots', { size: '64M', commands: data, snapshots: ['s1', 's2'] }],
  ];
  for (const [name, recipe] of recipes) {
    it(name, async () => {
      const image = await qemuImage(`check-agree-${name.replace(/\W+/g, '-')}`, recipe);
      const report = await checkImage(image);
      expect(report.findings).toEqual([]);
      expect(report.exitCode).toBe(0);
      await expectSameRefcountFindings(image, report);
      expect(report['compressed-clusters']).toBe(
        (await qemuCheck(image)).json?.['compressed-clusters'] ?? 0,
      );
    });
  }

  it('an image with a persistent dirty bitmap', async () => {
    const { qemuImg } = await import('./support/qemu-fixtures.js');
    const image = await qemuImage('check-agree-bitmap', { size: '64M', commands: data });
    const path = temp.file('bitmap.qcow2');
    await copyFile(image, path);
    await qemuImg('bitmap', '--add', path, 'b0');
    const report = await checkImage(path);
    expect(report.findings).toEqual([]);
    await expectSameRefcountFindings(path, report);
  });

  it('an image with an external data file', async () => {
    const { qemuImg, qemuIo } = await import('./support/qemu-fixtures.js');
    const path = temp.file('datafile.qcow2');
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      `data_file=${temp.file('datafile.data')},data_file_raw=on`,
      path,
      '64M',
    );
    await qemuIo(path, 'write -P 0x5a 0 3M', 'write -z 8M 64k');
    const report = await checkImage(path);
    expect(report.findings).toEqual([]);
    await expectSameRefcountFindings(path, report);
  });

  it('copy-on-write growth since the snapshots', async () => {
    const { qemuIo } = await import('./support/qemu-fixtures.js');
    const path = temp.file('cow.qcow2');
    await copyFile(withSnapshots, path);
    await qemuIo(path, 'write -P 0x33 64k 192k', 'write -P 0x34 32M 64k');
    const report = await checkImage(path);
    expect(report.exitCode).toBe(0);
    expect(report.copyOnWrite).toEqual({ clusters: 4, bytes: 4 * 65536 });
  });
});

describe('check finds each category at its location', () => {
  it('leak: exit 1, the appended cluster', async () => {
    let leaked = 0;
    const path = await corrupted(pristine, async (p) => {
      leaked = await appendLeakedCluster(p);
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(1);
    expect(report.verdict).toBe('leaks');
    expect(kinds(report)).toEqual(['leak']);
    expect(findingsOf(report, 'leak')[0]).toMatchObject({
      cluster: leaked,
      refcount: 1,
      reference: 0,
    });
    await expectSameRefcountFindings(path, report);
    expect((await qemuCheck(path)).code).toBe(3);
  });

  it('COPIED cleared on a data cluster: exit 2, the L2 entry and guest offset', async () => {
    const path = await corrupted(pristine, async (p) =>
      setL2Entry(p, 3, (await l2Entry(p, 3)) & ~(1n << 63n)),
    );
    const report = await checkImage(path, { mode: 'error' });
    expect(report.exitCode).toBe(2);
    expect(kinds(report)).toEqual(['copied']);
    const [finding] = findingsOf(report, 'copied');
    expect(finding).toMatchObject({
      structure: 'L2 table',
      owner: 'active',
      tableIndex: 0,
      entryIndex: 3,
      entryOffset: await l2EntryOffset(path, 3),
      virtualOffset: 3 * 65536,
      refcount: 1,
    });
    const qemu = await qemuCheck(path);
    expect(qemu.code).toBe(2);
    expect(qemu.stderr).toContain('OFLAG_COPIED data cluster');
  });

  it('COPIED cleared on an L1 entry: exit 2', async () => {
    const path = await corrupted(pristine, async (p) => {
      const { l1Offset } = await layout(p);
      await pokeU64BE(p, l1Offset, (await readU64BE(p, l1Offset)) & ~(1n << 63n));
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(2);
    expect(findingsOf(report, 'copied')[0]).toMatchObject({
      structure: 'active L1 table',
      entryIndex: 0,
    });
  });

  it('corrupt bit only: exit 3 (qemu-img says no errors)', async () => {
    const path = await corrupted(pristine, (p) => setIncompatibleBit(p, 1));
    const report = await checkImage(path);
    expect(report.exitCode).toBe(3);
    expect(kinds(report)).toEqual(['corrupt-bit']);
    expect(report.corruptBit).toBe(true);
    expect((await qemuCheck(path)).code).toBe(0);
  });

  it('refcount zeroed under a data cluster: exit 4, same errors as qemu-img', async () => {
    let cluster = 0;
    const path = await corrupted(pristine, async (p) => {
      cluster = await dataCluster(p, 2);
      await setRefcount(p, cluster, 0);
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(4);
    expect(kinds(report)).toEqual(['copied', 'refcount-error']);
    expect(findingsOf(report, 'refcount-error')[0]).toMatchObject({
      cluster,
      refcount: 0,
      reference: 1,
    });
    await expectSameRefcountFindings(path, report);
  });

  it('refcount bumped to 2: leak and COPIED mismatch, exit 2', async () => {
    const path = await corrupted(pristine, async (p) => setRefcount(p, await dataCluster(p, 5), 2));
    const report = await checkImage(path);
    expect(report.exitCode).toBe(2);
    expect(kinds(report)).toEqual(['copied', 'leak']);
    await expectSameRefcountFindings(path, report);
  });

  it('snapshot with an unaligned L1 offset: exit 5, and its clusters look leaked', async () => {
    const path = await corrupted(withSnapshots, async (p) => {
      const entry = await snapshotEntryOffset(p, 0);
      await pokeU64BE(p, entry, (await readU64BE(p, entry)) + 0x200n);
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(5);
    const [finding] = findingsOf(report, 'snapshot-table');
    expect(finding?.message).toMatch(/not cluster aligned/);
    expect(finding?.owner).toBe('1');
    await expectSameRefcountFindings(path, report);
  });

  it('damaged snapshot table offset: exit 5 (qemu-img cannot even open it)', async () => {
    const path = await corrupted(withSnapshots, async (p) =>
      pokeU64BE(p, 64, (await readU64BE(p, 64)) + 8n),
    );
    const report = await checkImage(path);
    expect(report.exitCode).toBe(5);
    expect(findingsOf(report, 'snapshot-table')[0]?.entryOffset).toBe(64);
    expect((await qemuCheck(path)).code).toBe(1);
  });

  it('duplicate snapshot ids: noted, but clean, as qemu-img check says', async () => {
    const path = await corrupted(withSnapshots, async (p) => {
      // Entry 1's id "2" becomes "1".
      const second = await snapshotEntryOffset(p, 1);
      const { readBytes, pokeBytes } = await import('@x/test-utils');
      const head = await readBytes(p, second, 40);
      await pokeBytes(p, second + 40 + head.readUInt32BE(36), Buffer.from('1'));
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(0);
    expect(findingsOf(report, 'ignored').map((f) => f.message)).toEqual([
      expect.stringMatching(/duplicate id "1" \(also entry 0\)/),
    ]);
    expect((await qemuCheck(path)).code).toBe(0);
  });

  it('unaligned data offset: exit 6 and the L2 entry; refcount errors as qemu-img counts them', async () => {
    const path = await corrupted(pristine, async (p) =>
      setL2Entry(p, 4, (await l2Entry(p, 4)) + 0x200n),
    );
    const report = await checkImage(path);
    expect(report.exitCode).toBe(6);
    expect(findingsOf(report, 'l2-entry')[0]).toMatchObject({
      entryIndex: 4,
      virtualOffset: 4 * 65536,
    });
    expect(findingsOf(report, 'l2-entry')[0]?.message).toMatch(/not properly aligned/);
    await expectSameRefcountFindings(path, report);
  });

  it('L2 entry aliasing the L1 table: exit 6, overlap named', async () => {
    const path = await corrupted(pristine, async (p) => {
      const { l1Offset } = await layout(p);
      await setL2Entry(p, 1, (1n << 63n) | BigInt(l1Offset));
    });
    const report = await checkImage(path, { mode: 'error' });
    expect(report.exitCode).toBe(6);
    const [overlap] = findingsOf(report, 'overlap');
    expect(overlap).toMatchObject({ entryIndex: 1, virtualOffset: 65536 });
    expect(overlap?.message).toMatch(/active L1 table/);
    const [error] = findingsOf(report, 'refcount-error');
    expect(error?.referencedBy?.map((r) => r.structure)).toEqual(['active L1 table', 'L2 table']);
    await expectSameRefcountFindings(path, report);
  });

  it('L1 entry pointing past the end of the file: exit 6 and leaks', async () => {
    const path = await corrupted(pristine, async (p) => {
      const { l1Offset } = await layout(p);
      await pokeU64BE(p, l1Offset, (1n << 63n) | (1n << 40n));
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(6);
    expect(findingsOf(report, 'l1-entry')[0]).toMatchObject({ entryIndex: 0, hostOffset: 2 ** 40 });
    const qemu = await qemuCheck(path);
    expect(qemu.stderr).toMatch(/exceeding the end of the file/);
    expect(report.leaks).toBe(qemu.json?.leaks);
  });

  it('one host cluster mapped by two active L2 entries: reused cluster, exit 6', async () => {
    const path = await corrupted(pristine, async (p) => setL2Entry(p, 7, await l2Entry(p, 6)));
    const report = await checkImage(path);
    expect(report.exitCode).toBe(6);
    const [reused] = findingsOf(report, 'reused-cluster');
    expect(reused).toMatchObject({ entryIndex: 7, virtualOffset: 7 * 65536 });
    expect(reused?.cluster).toBe(Number((await l2Entry(path, 6)) & OFFSET_MASK) / 65536);
    await expectSameRefcountFindings(path, report);
  });

  it('reused cluster under a snapshot is not confused with snapshot sharing', async () => {
    const clean = await checkImage(withSnapshots);
    expect(findingsOf(clean, 'reused-cluster')).toEqual([]);
    const path = await corrupted(withSnapshots, async (p) => setL2Entry(p, 9, await l2Entry(p, 8)));
    const report = await checkImage(path);
    expect(findingsOf(report, 'reused-cluster')).toHaveLength(1);
  });

  it('refcount table entry not cluster aligned: exit 4', async () => {
    const path = await corrupted(pristine, async (p) => {
      const { refcountTableOffset } = await layout(p);
      await pokeU64BE(p, refcountTableOffset, (await readU64BE(p, refcountTableOffset)) + 0x100n);
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(4);
    expect(findingsOf(report, 'refcount-table-entry')[0]).toMatchObject({ entryIndex: 0 });
    expect(report.suggestedRepair).toMatch(/rebuild-refcounts/);
  });

  it('refcount block placed on the L1 table: overlap, exit 6', async () => {
    const path = await corrupted(pristine, async (p) => {
      const { l1Offset, refcountTableOffset } = await layout(p);
      await pokeU64BE(p, refcountTableOffset, BigInt(l1Offset));
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(6);
    expect(findingsOf(report, 'overlap')[0]?.message).toMatch(
      /refcount block 0 overlaps the active L1 table/,
    );
  });

  it('dirty image with stale lazy refcounts: dirty bit and refcount errors, exit 4', async () => {
    const path = await dirtyImage();
    const report = await checkImage(path);
    expect(report.dirtyBit).toBe(true);
    expect(report.exitCode).toBe(4);
    expect(kinds(report)).toContain('dirty-bit');
    await expectSameRefcountFindings(path, report);
  });

  it('zero flag in a version 2 image: exit 6', async () => {
    const v2 = await qemuImage('check-v2', {
      size: '16M',
      options: 'compat=0.10',
      commands: ['write -P 0x11 0 256k'],
    });
    const path = await corrupted(v2, async (p) => setL2Entry(p, 1, (await l2Entry(p, 1)) | 1n));
    const report = await checkImage(path);
    expect(report.exitCode).toBe(6);
    expect(findingsOf(report, 'v2-zero-flag')[0]).toMatchObject({ entryIndex: 1 });
  });

  it('extended L2 entry with a subcluster both allocated and zero: exit 6', async () => {
    const image = await qemuImage('check-extl2', {
      size: '16M',
      options: 'extended_l2=on,cluster_size=128k',
      commands: ['write -P 1 4k 4k'],
    });
    expect((await checkImage(image)).exitCode).toBe(0);
    const path = await corrupted(image, async (p) => {
      const at = await l2EntryOffset(p, 0);
      // 16-byte entries: the bitmap's "zero" half is bytes 8–11; subcluster 1 is allocated.
      await pokeU32BE(p, at + 8, 0x2);
    });
    const report = await checkImage(path);
    expect(report.exitCode).toBe(6);
    expect(findingsOf(report, 'extended-l2-bitmap')[0]).toMatchObject({ entryIndex: 0 });
  });

  it('refcount overflow with 1-bit refcounts: exit 4', async () => {
    const image = await qemuImage('check-refbits1', {
      size: '16M',
      options: 'refcount_bits=1',
      commands: ['write -P 1 0 128k'],
    });
    const path = await corrupted(image, async (p) => setL2Entry(p, 1, await l2Entry(p, 0)));
    const report = await checkImage(path);
    expect(kinds(report)).toContain('refcount-overflow');
    expect(report.exitCode).toBe(6); // the reuse is corruption too; overflow alone would be 4
    const qemu = await qemuCheck(path);
    expect(qemu.stderr).toMatch(/overflow/);
  });

  it('--snapshot scopes entry-level findings', async () => {
    const path = await corrupted(pristine, async (p) =>
      setL2Entry(p, 3, (await l2Entry(p, 3)) & ~(1n << 63n)),
    );
    expect((await checkImage(path, { snapshot: 'inactive' })).counts.copied).toBeUndefined();
    expect((await checkImage(path, { snapshot: 'active' })).counts.copied).toBe(1);
    await expect(checkImage(path, { snapshot: 'nope' })).rejects.toMatchObject({
      code: 'NO_SUCH_SNAPSHOT',
    });
  });
});

describe('check survives bad input', () => {
  it('gives up with a typed error only when the file is not checkable', async () => {
    const notQcow2 = await corrupted(pristine, (p) => pokeU32BE(p, 0, 0x7f454c46));
    await expect(checkImage(notQcow2)).rejects.toBeInstanceOf(Qcow2Error);
    await expect(checkImage(notQcow2)).rejects.toMatchObject({ code: 'NOT_QCOW2' });
    const badClusterBits = await corrupted(pristine, (p) => pokeU32BE(p, 20, 30));
    await expect(checkImage(badClusterBits)).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      offset: 20,
    });
    await expect(checkImage(temp.file('missing.qcow2'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  for (const [name, poke] of [
    [
      'truncated to half',
      async (p: string) => truncate(p, Math.floor((await layout(p)).clusterSize * 5.5)),
    ],
    ['truncated to the header', (p: string) => truncate(p, 200)],
    ['absurd l1_size', (p: string) => pokeU32BE(p, 36, 0xffffffff)],
    ['absurd refcount_table_clusters', (p: string) => pokeU32BE(p, 56, 0xffffffff)],
    ['absurd nb_snapshots', (p: string) => pokeU32BE(p, 60, 0xffffffff)],
    ['L1 table past the end', (p: string) => pokeU64BE(p, 40, 1n << 50n)],
    ['refcount table past the end', (p: string) => pokeU64BE(p, 48, 1n << 45n)],
    ['virtual size 2^63', (p: string) => pokeU64BE(p, 24, 1n << 63n)],
    [
      'garbage L2 table',
      async (p: string) => {
        const at = await l2EntryOffset(p, 0);
        const { pokeBytes, seededBytes } = await import('@x/test-utils');
        await pokeBytes(p, at, seededBytes(65536, 7));
      },
    ],
    [
      'garbage refcount block',
      async (p: string) => {
        const { refcountTableOffset } = await layout(p);
        const block = Number(await readU64BE(p, refcountTableOffset));
        const { pokeBytes, seededBytes } = await import('@x/test-utils');
        await pokeBytes(p, block, seededBytes(65536, 9));
      },
    ],
  ] as const) {
    it(`keeps going: ${name}`, async () => {
      const path = await corrupted(withSnapshots, poke);
      const report = await checkImage(path);
      expect(report.exitCode).toBeGreaterThan(0);
      expect(report.findings.length).toBeGreaterThan(0);
      // Bounded output even for garbage.
      expect(report.findings.length).toBeLessThanOrEqual(1000 * 20);
    });
  }
});

async function dirtyImage(): Promise<string> {
  const { qemuImg, qemuIo } = await import('./support/qemu-fixtures.js');
  const path = temp.file('dirty.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path, '16M');
  await qemuIo(path, 'write -P 1 0 64k', 'abort').catch(() => undefined);
  return path;
}

describe('formatCheckReport', () => {
  it('takes the CheckMode type, and renders a clean report in each mode', async () => {
    // One definition of the modes: a new CheckMode must reach the formatter's signature too.
    expectTypeOf(formatCheckReport).parameter(1).toEqualTypeOf<CheckMode>();
    const modes: CheckMode[] = ['check', 'error', 'dump', 'info'];
    for (const mode of modes) {
      const lines = formatCheckReport(await checkImage(pristine, { mode }), mode);
      expect(lines[0], mode).toBe('No errors were found on the image.');
    }
  });
});
