import { readFile } from 'node:fs/promises';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applySnapshot,
  checkImage,
  createQcow2,
  createSnapshot,
  deleteSnapshot,
  deleteSnapshotsExcept,
  dumpImage,
  listSnapshots,
  openQcow2,
} from '../../src/index.js';
import { qemuImg, qemuIo } from '../support/qemu-fixtures.js';
import { expectClean, firstDifference, guestBytes } from './support.js';

type Step =
  | { kind: 'io'; commands: string[] }
  | { kind: 'create' | 'apply' | 'delete'; name: string };

const steps: Step[] = [
  { kind: 'io', commands: ['write -P 1 0 3M', 'write -P 2 10M 100k'] },
  { kind: 'create', name: 's1' },
  { kind: 'io', commands: ['write -P 3 512k 64k', 'write -P 4 20M 1M'] },
  { kind: 'create', name: 's2' },
  { kind: 'io', commands: ['write -P 5 0 100k'] },
  { kind: 'apply', name: 's1' },
  { kind: 'io', commands: ['write -P 6 2M 200k'] },
  { kind: 'delete', name: 's2' },
  { kind: 'create', name: 's3' },
  { kind: 'delete', name: 's1' },
];

function size(text: string): number {
  const unit = text.endsWith('M') ? 1 << 20 : text.endsWith('k') ? 1024 : 1;
  return Number.parseInt(text, 10) * unit;
}

describe('snapshots match qemu-img snapshot byte for byte', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-snapshot-');
  });
  afterAll(() => dir.remove());

  for (const options of [
    'compat=1.1',
    'compat=0.10',
    'cluster_size=4k,refcount_bits=64',
    'cluster_size=512',
  ]) {
    it(`create, write, apply, delete (${options})`, async () => {
      const theirs = dir.file(`${options.replace(/\W+/g, '-')}-q.qcow2`);
      const ours = dir.file(`${options.replace(/\W+/g, '-')}-o.qcow2`);
      for (const image of [theirs, ours])
        await qemuImg('create', '-q', '-f', 'qcow2', '-o', options, image, '64M');
      for (const step of steps) {
        if (step.kind === 'io') {
          await qemuIo(theirs, ...step.commands);
          const image = await openQcow2(ours, { writable: true });
          try {
            for (const command of step.commands) {
              const [, , pattern, offset, length] = command.split(' ') as [
                string,
                string,
                string,
                string,
                string,
              ];
              await image.write(size(offset), Buffer.alloc(size(length), Number(pattern)));
            }
          } finally {
            await image.close();
          }
        } else if (step.kind === 'create') {
          await qemuImg('snapshot', '-c', step.name, theirs);
          const made = (await listSnapshots(theirs)).at(-1);
          await createSnapshot(ours, step.name, {
            date: { sec: made?.dateSec ?? 0, nsec: made?.dateNsec ?? 0 },
          });
        } else if (step.kind === 'apply') {
          await qemuImg('snapshot', '-a', step.name, theirs);
          await applySnapshot(ours, step.name);
        } else {
          await qemuImg('snapshot', '-d', step.name, theirs);
          await deleteSnapshot(ours, step.name);
        }
        const expected = await readFile(theirs);
        const actual = await readFile(ours);
        expect({ step, length: actual.byteLength }).toEqual({ step, length: expected.byteLength });
        expect({ step, difference: firstDifference(actual, expected) }).toEqual({
          step,
          difference: -1,
        });
        await expectClean(ours);
      }
      expect(
        firstDifference(
          await guestBytes(ours, `${ours}.raw`),
          await guestBytes(theirs, `${theirs}.raw`),
        ),
      ).toBe(-1);
    });
  }

  it('lists, deletes all but one, and reports typed errors', async () => {
    const image = dir.file('many.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', image, '16M');
    await qemuIo(image, 'write -P 7 0 1M');
    for (const name of ['a', 'b', 'c']) await createSnapshot(image, name);
    await qemuIo(image, 'write -P 8 0 64k');
    const listed = await listSnapshots(image);
    expect(listed.map((entry) => [entry.id, entry.name, entry.icount, entry.diskSize])).toEqual([
      ['1', 'a', 0n, 16 << 20],
      ['2', 'b', 0n, 16 << 20],
      ['3', 'c', 0n, 16 << 20],
    ]);
    const qemuList = (await qemuImg('snapshot', '-l', image)).stdout;
    expect(qemuList).toMatch(/\b1\s+a\b/);
    const deleted = await deleteSnapshotsExcept(image, 'b');
    expect(deleted.map((entry) => entry.name)).toEqual(['a', 'c']);
    expect((await listSnapshots(image)).map((entry) => entry.name)).toEqual(['b']);
    await expectClean(image);
    await applySnapshot(image, '2');
    await expectClean(image);
    const raw = await guestBytes(image, dir.file('many.raw'));
    expect(raw.subarray(0, 1 << 20).every((byte) => byte === 7)).toBe(true);
    await expect(applySnapshot(image, 'nope')).rejects.toMatchObject({ code: 'NO_SUCH_SNAPSHOT' });
    await expect(deleteSnapshot(image, 'nope')).rejects.toMatchObject({ code: 'NO_SUCH_SNAPSHOT' });
  });

  it('every entry point finds a snapshot by id first, then by name, and refuses alike', async () => {
    // Snapshot 1 is named "2" and snapshot 2 is named "1": the rule decides which is meant.
    const image = dir.file('id-or-name.qcow2');
    await createQcow2(image, { size: 1 << 20 });
    for (const [pattern, name] of [
      [1, '2'],
      [2, '1'],
    ] as const) {
      const writable = await openQcow2(image, { writable: true });
      await writable.write(0, Buffer.alloc(512, pattern));
      await writable.close();
      await createSnapshot(image, name);
    }
    const view = await openQcow2(image, { snapshot: '1' });
    expect((await view.read(0, 1))[0]).toBe(1);
    await view.close();
    expect((await checkImage(image, { snapshot: '2' })).exitCode).toBe(0);

    const refusal = {
      code: 'NO_SUCH_SNAPSHOT',
      path: image,
      structure: 'snapshot table',
      message: 'no snapshot with id or name "nope" (the image has 1 "2", 2 "1")',
    };
    const onRecord = () => {};
    await expect(openQcow2(image, { snapshot: 'nope' })).rejects.toMatchObject(refusal);
    await expect(checkImage(image, { snapshot: 'nope' })).rejects.toMatchObject(refusal);
    await expect(
      dumpImage(image, { sections: ['l1'], snapshot: 'nope', onRecord }),
    ).rejects.toMatchObject(refusal);
    await expect(applySnapshot(image, 'nope')).rejects.toMatchObject(refusal);
    await expect(deleteSnapshot(image, 'nope')).rejects.toMatchObject(refusal);
    await expect(deleteSnapshotsExcept(image, 'nope')).rejects.toMatchObject(refusal);

    expect((await applySnapshot(image, '1')).name).toBe('2');
    expect((await deleteSnapshot(image, '2')).name).toBe('1');
    expect((await listSnapshots(image)).map((entry) => [entry.id, entry.name])).toEqual([
      ['1', '2'],
    ]);
    await expectClean(image);
  });

  it('refuses a snapshot that would overflow 1-bit refcounts, leaving the image clean', async () => {
    const image = dir.file('narrow.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=1', image, '16M');
    await qemuIo(image, 'write -P 1 0 64k');
    await expect(createSnapshot(image, 's1')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expectClean(image);
  });
});
