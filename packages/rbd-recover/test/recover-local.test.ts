import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { filesEqual, makeTempDir, runPeerOk, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createInventory,
  listImages,
  loadInventory,
  lookupImage,
  type OsdLocation,
  recoverImage,
} from '../src/index.js';
import { type ExtractedFixture, extractedFixture } from './support/ceph-fixture.js';
import { peerKvOpener } from './support/peer-kv.js';

let fixture: ExtractedFixture;
let temp: TempDir;
let workdir: string;
let staleWorkdir: string;

beforeAll(async () => {
  fixture = await extractedFixture();
  temp = await makeTempDir('rbd-local-');
  workdir = temp.file('work');
  staleWorkdir = temp.file('stale');
  const both: OsdLocation[] = [
    { host: 'local', dataPath: fixture.osd0 },
    { host: 'local', dataPath: fixture.osd1 },
  ];
  const summary = await createInventory(both, { workdir });
  expect(summary.osds.map((osd) => osd.status)).toEqual(['scanned', 'scanned']);
  expect(summary.osds.map((osd) => osd.kvBackend)).toEqual(['leveldb', 'rocksdb']);
  await createInventory([{ host: 'local', dataPath: fixture.osd1 }], { workdir: staleWorkdir });
});

afterAll(async () => {
  await temp?.remove();
});

describe('the real FileStore fixture through local paths', () => {
  it('the inventory read through @x/kvstore equals one read through plyvel and ldb', async () => {
    const peerWorkdir = temp.file('peer');
    await createInventory(
      [
        { host: 'local', dataPath: fixture.osd0 },
        { host: 'local', dataPath: fixture.osd1 },
      ],
      { workdir: peerWorkdir, openKvStore: peerKvOpener },
    );
    const ours = await loadInventory(workdir);
    const theirs = await loadInventory(peerWorkdir);
    for (const [i, osd] of ours.osds.entries()) {
      const peer = theirs.osds[i];
      expect({ ...osd, createdAt: '' }).toEqual({ ...peer, createdAt: '' });
    }
    expect(ours.osds[0]?.pgEpochs).toEqual({
      '1.0': 28,
      '1.1': 28,
      '1.2': 28,
      '1.3': 28,
      '1.4': 28,
      '1.5': 28,
      '1.6': 28,
      '1.7': 28,
    });
    expect(ours.osds[1]?.pgEpochs).toEqual({
      '1.0': 26,
      '1.1': 25,
      '1.2': 24,
      '1.3': 26,
      '1.4': 25,
      '1.5': 24,
      '1.6': 25,
      '1.7': 23,
    });
  });

  it('lists both images, by pool name from the OSD map', async () => {
    const images = await listImages({ workdir });
    expect(images.map((image) => `${image.pool.name}/${image.name} v${image.format}`)).toEqual([
      'rbd/img_v1 v1',
      'rbd/img_v2.a v2',
    ]);
  });

  it('looks up format 2 and format 1 metadata, by pool name and id', async () => {
    const v2 = await lookupImage('rbd/img_v2.a', { workdir });
    expect(v2).toMatchObject({
      id: '102e52f45f67',
      prefix: 'rbd_data.102e52f45f67',
      order: 22,
      size: 48 << 20,
      features: 0x3dn,
      snapSeq: 5n,
    });
    expect(v2.snapshots).toEqual([
      { id: 4n, name: 's1', size: 48 << 20 },
      { id: 5n, name: 's2', size: 48 << 20 },
    ]);
    const v1 = await lookupImage('1/img_v1', { workdir });
    expect(v1).toMatchObject({
      prefix: 'rb.0.1034.6b8b4567',
      order: 22,
      size: 16 << 20,
      snapSeq: 6n,
    });
    expect(v1.snapshots).toEqual([{ id: 6n, name: 'v1s1', size: 16 << 20 }]);
  });

  for (const name of ['img_v2.a', 'img_v2.a@s1', 'img_v2.a@s2', 'img_v1', 'img_v1@v1s1']) {
    it(`rebuilds ${name} equal to its rbd export`, async () => {
      const output = temp.file(`${name}.raw`);
      const report = await recoverImage(`rbd/${name}`, output, { workdir });
      expect(report.complete).toBe(true);
      expect(await filesEqual(output, fixture.exportPath(name))).toBe(true);
    });
  }

  it('the stale OSD alone gives the pre-degrade head', async () => {
    const output = temp.file('stale.raw');
    await recoverImage('rbd/img_v2.a', output, { workdir: staleWorkdir });
    expect(await filesEqual(output, fixture.exportPath('img_v2.a.pre-degrade'))).toBe(true);
  });

  it('--all-snapshots as raw gives a directory of every state', async () => {
    const output = temp.file('all-v2');
    const report = await recoverImage('rbd/img_v2.a', output, { workdir, allSnapshots: true });
    expect((await readdir(output)).sort()).toEqual([
      'img_v2.a.raw',
      'img_v2.a@s1.raw',
      'img_v2.a@s2.raw',
    ]);
    for (const name of ['img_v2.a', 'img_v2.a@s1', 'img_v2.a@s2']) {
      expect(await filesEqual(join(output, `${name}.raw`), fixture.exportPath(name))).toBe(true);
    }
    expect(report.states.map((state) => state.label)).toEqual(['s1', 's2', 'head']);
  });

  for (const image of ['img_v2.a', 'img_v1']) {
    it(`--all-snapshots as QCOW2 of ${image}: qemu-img applies each snapshot to its rbd export`, async () => {
      const output = temp.file(`${image}.qcow2`);
      const report = await recoverImage(`rbd/${image}`, output, {
        workdir,
        allSnapshots: true,
        format: 'qcow2',
      });
      expect(report.complete).toBe(true);
      await runPeerOk('qemu-img', ['check', output]);
      const head = temp.file(`${image}.qcow2.head.raw`);
      await runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', output, head]);
      expect(await filesEqual(head, fixture.exportPath(image))).toBe(true);
      for (const state of report.states.filter((s) => s.snapId !== undefined)) {
        const copy = temp.file(`${image}-${state.label}.qcow2`);
        await copyFile(output, copy);
        await runPeerOk('qemu-img', ['snapshot', '-a', state.label, copy]);
        const raw = temp.file(`${image}-${state.label}.raw`);
        await runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', copy, raw]);
        expect(await filesEqual(raw, fixture.exportPath(`${image}@${state.label}`))).toBe(true);
      }
    });
  }
});
