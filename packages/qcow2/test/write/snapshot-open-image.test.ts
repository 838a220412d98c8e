import { readFile } from 'node:fs/promises';
import { makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSnapshots, openQcow2, type Qcow2WritePath } from '../../src/index.js';
import { qemuImg, qemuIo } from '../support/qemu-fixtures.js';
import { expectClean, firstDifference, guestBytes } from './support.js';

const K = 1024;
const M = 1 << 20;
const SIZE = 16 * M;

interface Write {
  pattern: number;
  offset: number;
  length: number;
}

/** Write, snapshot s1, write more, snapshot s2, write again; the writes overlap what the snapshots hold. */
const rounds: Write[][] = [
  [
    { pattern: 1, offset: 0, length: 3 * M },
    { pattern: 2, offset: 10 * M, length: 100 * K },
  ],
  [
    { pattern: 3, offset: 512 * K, length: 64 * K },
    { pattern: 4, offset: 12 * M, length: M },
  ],
  [{ pattern: 5, offset: 100 * K, length: 3 * K }],
];

const applyTo = (bytes: Buffer, writes: Write[]) => {
  for (const { pattern, offset, length } of writes) bytes.fill(pattern, offset, offset + length);
};

// Qcow2Image.createSnapshot takes snapshots between writes of one open image:
// the same file as qemu-io writes with `qemu-img snapshot -c` in between.
describe('Qcow2Image.createSnapshot on an open writable image', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-snapshot-open-');
  });
  afterAll(() => dir.remove());

  for (const options of ['compat=1.1', 'compat=0.10', 'cluster_size=4k,lazy_refcounts=on']) {
    it(`write, snapshot, write, snapshot, write (${options})`, async () => {
      const label = options.replace(/\W+/g, '-');
      const ours = dir.file(`${label}-ours.qcow2`);
      const theirs = dir.file(`${label}-theirs.qcow2`);
      for (const path of [ours, theirs]) {
        await qemuImg('create', '-q', '-f', 'qcow2', '-o', options, path, String(SIZE));
      }
      const expected = Buffer.alloc(SIZE);
      const atSnapshot: Buffer[] = [];
      const image = await openQcow2(ours, { writable: true });
      try {
        for (const [round, writes] of rounds.entries()) {
          await qemuIo(
            theirs,
            ...writes.map((w) => `write -P ${w.pattern} ${w.offset} ${w.length}`),
          );
          for (const { pattern, offset, length } of writes) {
            await image.write(offset, Buffer.alloc(length, pattern));
          }
          applyTo(expected, writes);
          if (round === rounds.length - 1) break;
          const name = `s${round + 1}`;
          await qemuImg('snapshot', '-c', name, theirs);
          const made = (await listSnapshots(theirs)).at(-1);
          const taken = await image.createSnapshot(name, {
            date: { sec: made?.dateSec ?? 0, nsec: made?.dateNsec ?? 0 },
          });
          expect(taken).toMatchObject({ id: String(round + 1), name, diskSize: SIZE });
          atSnapshot.push(Buffer.from(expected));
        }
      } finally {
        await image.close();
      }

      const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
      expect({
        sizes: [a.byteLength, b.byteLength],
        firstDifference: firstDifference(a, b),
      }).toEqual({ sizes: [b.byteLength, b.byteLength], firstDifference: -1 });
      await expectClean(ours);
      const listed = await runPeerOk('qemu-img', ['snapshot', '-l', ours]);
      const names = listed.stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter((fields) => /^\d+$/.test(fields[0] ?? ''))
        .map((fields) => fields.slice(0, 2).join(' '));
      expect(names).toEqual(['1 s1', '2 s2']);
      for (const [index, bytes] of atSnapshot.entries()) {
        const raw = dir.file(`${label}-s${index + 1}.raw`);
        await runPeerOk('qemu-img', ['convert', '-l', `s${index + 1}`, '-O', 'raw', ours, raw]);
        const read = await readFile(raw);
        expect(firstDifference(read, bytes), `s${index + 1}`).toBe(-1);
      }
      const active = await guestBytes(ours, dir.file(`${label}-active.raw`));
      expect(firstDifference(active, expected)).toBe(-1);
    });
  }

  it('refuses with READ_ONLY on a read-only image and a snapshot view', async () => {
    const path = dir.file('read-only.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', path, '1M');
    await qemuImg('snapshot', '-c', 'base', path);
    for (const options of [{}, { snapshot: 'base' }]) {
      const image = await openQcow2(path, options);
      try {
        await expect(image.createSnapshot('more')).rejects.toMatchObject({ code: 'READ_ONLY' });
      } finally {
        await image.close();
      }
    }
    expect((await listSnapshots(path)).map((snapshot) => snapshot.name)).toEqual(['base']);
  });

  it('refuses a date that is not { sec, nsec } before changing anything', async () => {
    const path = dir.file('bad-date.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', path, '1M');
    const image = await openQcow2(path, { writable: true });
    try {
      await image.write(0, Buffer.alloc(64 * K, 1));
      for (const date of [
        new Date(0),
        { sec: -1, nsec: 0 },
        { sec: 2 ** 32, nsec: 0 },
        { sec: 1, nsec: 1e9 },
      ]) {
        await expect(
          image.createSnapshot('dated', { date: date as unknown as { sec: number; nsec: number } }),
        ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', path });
      }
    } finally {
      await image.close();
    }
    // No L1 copy or references left behind.
    await expectClean(path);
    expect(await listSnapshots(path)).toEqual([]);
  });

  it('refuses with UNSUPPORTED when a plugged-in write path cannot snapshot', async () => {
    const path = dir.file('plugged.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', path, '1M');
    const writePath: Qcow2WritePath = {
      write: async () => {},
      writeZeroes: async () => {},
      discard: async () => {},
      flush: async () => {},
      close: async () => {},
    };
    const image = await openQcow2(path, { writable: true, writePath: () => writePath });
    try {
      await expect(image.createSnapshot('s1')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    } finally {
      await image.close();
    }
  });
});
