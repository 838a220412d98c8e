import { copyFile } from 'node:fs/promises';
import {
  filesEqual,
  makeTempDir,
  pokeBytes,
  pokeU32BE,
  pokeU64BE,
  readBytes,
  readU64BE,
  runPeer,
  runPeerOk,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CheckReport,
  checkImage,
  convertToQcow2,
  convertToRaw,
  createSnapshot,
  listSnapshots,
} from '../src/index.js';
import { l2EntryOffset, layout, OFFSET_MASK } from './support/corrupt.js';
import { SNAPSHOT_TABLE_RECIPES } from './support/damage-recipes.js';
import { qemuCheck } from './support/qemu-check.js';
import { qemuImage } from './support/qemu-fixtures.js';
import { ourVerdictClass, qemuVerdictClass } from './support/verdict-class.js';

/*
 * The damage QEMU's own iotests make (header, L1/L2 and refcount-table pokes on
 * an image from qemu-img create + qemu-io), each compared with qemu-img in the
 * same run: where qemu-img convert reads, we read the same bytes (refusing by
 * default, with --salvage listing what was zero-filled), and check's verdict
 * class matches qemu-img check's.
 */

const temp = await makeTempDir('qcow2-damage-');
let pristine: string;
let extended: string;

beforeAll(async () => {
  pristine = await qemuImage('damage-base', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M', 'write -P 0xbb 8M 64k'],
  });
  extended = await qemuImage('damage-extended-l2', {
    size: '64M',
    options: 'extended_l2=on,cluster_size=128k',
    commands: ['write -P 1 0 256k'],
  });
});
afterAll(() => temp.remove());

let counter = 0;
async function damaged(base: string, poke: (path: string) => Promise<void>): Promise<string> {
  const path = temp.file(`damaged-${++counter}.qcow2`);
  await copyFile(base, path);
  await poke(path);
  return path;
}

/** qemu-img convert -O raw; fails the test if qemu-img does not convert. */
async function qemuConvert(path: string): Promise<string> {
  const out = temp.file(`qemu-${++counter}.raw`);
  const result = await runPeer('qemu-img', ['convert', '-O', 'raw', path, out]);
  expect(result.code, result.stderr).toBe(0);
  return out;
}

async function expectSameVerdictClass(path: string): Promise<CheckReport> {
  const [peer, ours] = await Promise.all([qemuCheck(path), checkImage(path)]);
  expect(ourVerdictClass(ours), `qemu-img check: ${peer.stderr}`).toBe(qemuVerdictClass(peer.code));
  return ours;
}

describe('where qemu-img convert reads, we read the same bytes', () => {
  it('an L2 table past the end of the file: refused by default naming the guest range; --salvage lists it', async () => {
    const path = await damaged(pristine, async (file) => {
      const { l1Offset } = await layout(file);
      await pokeU64BE(file, l1Offset, (1n << 63n) | 0x10000000n);
    });
    const theirs = await qemuConvert(path);
    await expect(convertToRaw(path, temp.file('refused.raw'))).rejects.toMatchObject({
      code: 'CORRUPT',
      path,
      message: expect.stringMatching(/0x0\.\.0x20000000.*--salvage/),
    });
    const out = temp.file(`ours-${++counter}.raw`);
    const result = await convertToRaw(path, out, { salvage: true });
    expect(await filesEqual(out, theirs)).toBe(true);
    expect(result.salvaged).toEqual({
      ranges: [
        {
          guestOffset: 0,
          length: 64 << 20,
          reason: 'l2-table-past-end',
          structure: 'L1 table entry 0',
          hostOffset: 0x10000000,
          path,
          readsAs: 'unallocated',
        },
      ],
      totalBytes: 64 << 20,
      truncated: false,
    });
    await expectSameVerdictClass(path);
  });

  it('a data cluster past the end of the file: the same bytes with --salvage (also to qcow2), and the range', async () => {
    const path = await damaged(pristine, async (file) => {
      await pokeU64BE(file, await l2EntryOffset(file, 2), (1n << 63n) | 0x10000000n);
    });
    const theirs = await qemuConvert(path);
    await expect(convertToRaw(path, temp.file('refused2.raw'))).rejects.toMatchObject({
      code: 'CORRUPT',
      structure: expect.stringMatching(/L2 table at 0x[0-9a-f]+ entry 2/),
      message: expect.stringMatching(/guest bytes 0x20000\.\.0x30000/),
    });
    const out = temp.file(`ours-${++counter}.raw`);
    const result = await convertToRaw(path, out, { salvage: true });
    expect(await filesEqual(out, theirs)).toBe(true);
    expect(result.salvaged?.ranges).toMatchObject([
      { guestOffset: 0x20000, length: 0x10000, reason: 'data-past-end', readsAs: 'zeros' },
    ]);
    // qcow2 output holds the same guest bytes.
    const asQcow2 = temp.file(`ours-${++counter}.qcow2`);
    const qcow2Result = await convertToQcow2(path, asQcow2, { salvage: true });
    expect(qcow2Result.salvaged?.totalBytes).toBe(0x10000);
    expect(await filesEqual(await qemuConvert(asQcow2), theirs)).toBe(true);
    await expectSameVerdictClass(path);
  });

  it('nothing damaged: --salvage lists nothing', async () => {
    const out = temp.file(`ours-${++counter}.raw`);
    const result = await convertToRaw(pristine, out, { salvage: true });
    expect(result.salvaged).toEqual({ ranges: [], totalBytes: 0, truncated: false });
    expect(await filesEqual(out, await qemuConvert(pristine))).toBe(true);
  });

  it('an L1 entry pointing at the L1 table itself: read as qemu-img reads it, no salvage needed', async () => {
    const path = await damaged(pristine, async (file) => {
      const { l1Offset } = await layout(file);
      await pokeU64BE(file, l1Offset, (1n << 63n) | BigInt(l1Offset));
    });
    const out = temp.file(`ours-${++counter}.raw`);
    await convertToRaw(path, out);
    expect(await filesEqual(out, await qemuConvert(path))).toBe(true);
    await expectSameVerdictClass(path);
  });
});

describe('reading does not validate what reading does not need', () => {
  it.each([
    ['0', 0n],
    ['past the end of the file', 0x10000000n],
  ])('a refcount table offset of %s: converted as qemu-img converts it', async (_name, value) => {
    const path = await damaged(pristine, (file) => pokeU64BE(file, 48, value));
    const out = temp.file(`ours-${++counter}.raw`);
    await convertToRaw(path, out);
    expect(await filesEqual(out, await qemuConvert(path))).toBe(true);
    await expectSameVerdictClass(path);
  });
});

describe('a snapshot table cut by the end of the file: read as QEMU reads it', () => {
  const CUT = [
    'snapshot table offset past the end of the file',
    'nb_snapshots one more than the table holds',
    'snapshot table truncated by the end of the file',
    "snapshot table cut inside an entry's L1 offset",
  ];
  it.each(
    SNAPSHOT_TABLE_RECIPES.filter((recipe) => CUT.includes(recipe.name)).map(
      (recipe) => [recipe.name, recipe] as const,
    ),
  )("%s: converted to qemu-img's bytes; a writer refuses it", async (_name, recipe) => {
    const base = await qemuImage('verdicts-snapshots', {
      size: '64M',
      commands: ['write -P 0xaa 0 1M'],
      snapshots: ['s1', 's2'],
    });
    const path = await damaged(base, recipe.poke);
    const out = temp.file(`ours-${++counter}.raw`);
    await convertToRaw(path, out);
    expect(await filesEqual(out, await qemuConvert(path))).toBe(true);
    // The missing bytes read as zeros: entries wholly past the end have no id, as qemu-img lists them.
    const listed = (await runPeerOk('qemu-img', ['snapshot', '-l', path])).stdout;
    const ids = (await listSnapshots(path)).map((snapshot) => snapshot.id);
    expect(ids.filter((id) => id !== '')).toEqual(
      ['1', '2'].filter((id) => new RegExp(`^${id} `, 'm').test(listed)),
    );
    await expect(createSnapshot(path, 's3')).rejects.toMatchObject({ code: 'CORRUPT' });
    await expectSameVerdictClass(path);
  });
});

describe('what QEMU ignores is not an error', () => {
  it('bit 0 of a standard extended-L2 descriptor: clean, like qemu-img check, noted as ignored', async () => {
    const path = await damaged(extended, async (file) => {
      const { l1Offset } = await layout(file);
      const l2 = Number((await readU64BE(file, l1Offset)) & OFFSET_MASK);
      await pokeU64BE(file, l2, (await readU64BE(file, l2)) | 1n);
    });
    const report = await expectSameVerdictClass(path);
    expect(report.verdict).toBe('clean');
    expect(report.counts).toEqual({ ignored: 1 });
    const out = temp.file(`ours-${++counter}.raw`);
    await convertToRaw(path, out);
    expect(await filesEqual(out, await qemuConvert(path))).toBe(true);
  });

  it('COPIED on an L2 entry without a host cluster: unallocated, as in QEMU (leaks only)', async () => {
    const path = await damaged(pristine, async (file) => {
      await pokeU64BE(file, await l2EntryOffset(file, 1), 1n << 63n);
    });
    const report = await expectSameVerdictClass(path);
    expect(report.verdict).toBe('leaks');
    expect(report.counts.ignored).toBe(1);
    const out = temp.file(`ours-${++counter}.raw`);
    await convertToRaw(path, out);
    expect(await filesEqual(out, await qemuConvert(path))).toBe(true);
  });
});

describe('check reports the header faults qemu-img refuses to open on', () => {
  /** qemu-img cannot open it; our check names the fault (a finding, not "clean"). */
  async function expectFault(path: string, qemuSays: RegExp, kind: string, ours: RegExp) {
    const peer = await qemuCheck(path);
    expect(peer.code).toBe(1);
    expect(peer.stderr).toMatch(qemuSays);
    const report = await checkImage(path);
    expect(report.verdict).toBe('corrupt');
    const finding = report.findings.find((f) => f.kind === kind);
    expect(finding?.message).toMatch(ours);
  }

  async function withBacking(): Promise<string> {
    const path = temp.file(`overlay-${++counter}.qcow2`);
    await runPeerOk('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      pristine,
      '-F',
      'qcow2',
      path,
    ]);
    return path;
  }

  it('a backing file name longer than 1023 bytes', async () => {
    const path = await withBacking();
    await pokeU32BE(path, 16, 2000);
    await expectFault(path, /Backing file name too long/, 'header', /longer than 1023/);
  });

  it('a backing file name offset outside the header cluster', async () => {
    const path = await withBacking();
    await pokeU64BE(path, 8, 0x20000n);
    await expectFault(path, /Invalid backing file offset/, 'header', /outside the header cluster/);
  });

  it('an unknown encryption method: check names it, convert refuses it as unknown', async () => {
    const path = await damaged(pristine, (file) => pokeU32BE(file, 32, 7));
    await expectFault(path, /Unsupported encryption method/, 'header', /crypt_method 7 is unknown/);
    await expect(convertToRaw(path, temp.file('crypt.raw'))).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/crypt_method 7 is unknown/),
    });
  });

  /** Offset of the bitmap directory, from the bitmaps header extension. */
  async function bitmapDirectory(path: string): Promise<number> {
    const head = await readBytes(path, 0, 4096);
    let at = head.readUInt32BE(100);
    for (;;) {
      const type = head.readUInt32BE(at);
      const length = head.readUInt32BE(at + 4);
      if (type === 0) throw new Error('no bitmaps extension');
      if (type === 0x23852875) return Number(head.readBigUInt64BE(at + 24));
      at += 8 + Math.ceil(length / 8) * 8;
    }
  }

  it.each([
    ['a wrong extra-data size', 20, [0, 0, 0, 8], /Broken bitmap directory/, /extra data/],
    [
      'a bitmap type that is not dirty tracking',
      16,
      [2],
      /doesn't satisfy the constraints/,
      /type 2/,
    ],
  ])('a bitmap directory entry with %s', async (_name, at, bytes, qemuSays, ours) => {
    const path = await damaged(pristine, async (file) => {
      await runPeerOk('qemu-img', ['bitmap', '--add', file, 'b0']);
      await pokeBytes(file, (await bitmapDirectory(file)) + at, Buffer.from(bytes));
    });
    await expectFault(path, qemuSays, 'bitmaps', ours);
  });
});
