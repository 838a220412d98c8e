import { readFile } from 'node:fs/promises';
import { fuzzParameters, makeTempDir, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applySnapshot,
  createQcow2,
  deleteSnapshot,
  openQcow2,
  type Qcow2Image,
} from '../../src/index.js';
import { qemuImg } from '../support/qemu-fixtures.js';
import { applyClusterOp, type ClusterOp, clusterOpArbitraries } from './cluster-ops.js';
import { expectClean, firstDifference } from './support.js';

/**
 * Snapshots taken on the open image, applied and deleted between sessions, with
 * writes, zeroes, discards and compressed clusters around them: shared clusters are
 * copied on write, compressed ones shared by several snapshots, refcounts go up
 * and down and freed space is taken again. Every snapshot and the active image read
 * what a model says (ours and qemu-img's), and qemu-img check finds no error or leak.
 */
type Write = Exclude<ClusterOp, { kind: 'read' }> | { kind: 'snapshot' };

interface Session {
  writes: Write[];
  /** Between sessions, on the closed image: apply or delete the snapshot at this index. */
  then: { kind: 'none' } | { kind: 'apply' | 'delete'; pick: number };
}

const CLUSTERS = 6;

function sessions(clusterSize: number): fc.Arbitrary<Session[]> {
  const op = clusterOpArbitraries(clusterSize, CLUSTERS);
  const write = fc.oneof(
    { arbitrary: op.write, weight: 3 },
    op.zero,
    op.discard,
    { arbitrary: op.compressed, weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }), weight: 2 },
  );
  const then = fc.oneof(
    fc.record({ kind: fc.constant('none' as const) }),
    fc.record({
      kind: fc.constantFrom('apply' as const, 'delete' as const),
      pick: fc.nat(),
    }),
  );
  return fc.array(fc.record({ writes: fc.array(write, { maxLength: 8 }), then }), {
    minLength: 1,
    maxLength: 4,
  });
}

interface Model {
  active: Buffer;
  snapshots: Array<{ name: string; bytes: Buffer }>;
  taken: number;
}

async function applyWrite(image: Qcow2Image, model: Model, op: Write, clusterSize: number) {
  if (op.kind !== 'snapshot') return applyClusterOp(image, model.active, op, clusterSize);
  const name = `s${++model.taken}`;
  await image.createSnapshot(name);
  model.snapshots.push({ name, bytes: Buffer.from(model.active) });
}

const configs = [
  { name: '64 KiB clusters', clusterSize: 65536 },
  { name: '4 KiB clusters, lazy refcounts', clusterSize: 4096, lazyRefcounts: true },
  { name: '4 KiB clusters, version 2', clusterSize: 4096, version: 2 as const },
];

describe('snapshots taken, applied and deleted among writes and compressed clusters', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-snapshot-property-');
  });
  afterAll(() => dir.remove());

  for (const { name, ...options } of configs) {
    it(name, async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(sessions(options.clusterSize), async (plan) => {
          const path = dir.file(`${name.replace(/\W+/g, '-')}-${run++}.qcow2`);
          const size = CLUSTERS * options.clusterSize;
          await createQcow2(path, { size, ...options });
          const model: Model = { active: Buffer.alloc(size), snapshots: [], taken: 0 };
          for (const session of plan) {
            const image = await openQcow2(path, { writable: true });
            try {
              for (const op of session.writes) {
                await applyWrite(image, model, op, options.clusterSize);
              }
            } finally {
              await image.close();
            }
            const { then } = session;
            if (then.kind === 'none' || model.snapshots.length === 0) continue;
            const index = then.pick % model.snapshots.length;
            const snapshot = model.snapshots[index] as Model['snapshots'][number];
            if (then.kind === 'apply') {
              await applySnapshot(path, snapshot.name);
              model.active = Buffer.from(snapshot.bytes);
            } else {
              await deleteSnapshot(path, snapshot.name);
              model.snapshots.splice(index, 1);
            }
          }
          await expectClean(path);
          for (const view of [undefined, ...model.snapshots]) {
            const expected = view === undefined ? model.active : view.bytes;
            const image = await openQcow2(path, { snapshot: view?.name });
            try {
              expect(firstDifference(await image.read(0, size), expected)).toBe(-1);
            } finally {
              await image.close();
            }
            const raw = `${path}.${view?.name ?? 'active'}.raw`;
            const select = view === undefined ? [] : ['-l', `snapshot.name=${view.name}`];
            await qemuImg('convert', '-U', ...select, '-O', 'raw', path, raw);
            expect(firstDifference(await readFile(raw), expected)).toBe(-1);
          }
        }),
        fuzzParameters('SNAPSHOT_PROPERTY_RUNS', 20),
      );
    }, 180_000);
  }
});
