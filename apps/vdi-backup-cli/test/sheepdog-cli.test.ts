import { readFile } from 'node:fs/promises';
import { FakeSheep, makeTempDir, sheepVdiHash, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultJson, vdiBackup } from './support/cli.js';

const OBJECT = 1 << 20;

/** VDI "tiny": 4 MiB in 1 MiB objects; snapshot s1, snapshot s2 with two objects changed. */
function tinyCluster(): { sheep: FakeSheep; s1: number; s2: number; working: number } {
  const sheep = new FakeSheep();
  const s1 = sheepVdiHash('tiny');
  const s2 = s1 + 1;
  const working = s1 + 2;
  const common = { name: 'tiny', size: 4 * OBJECT, blockSizeShift: 20 };
  sheep.addVdi({
    ...common,
    vid: s1,
    parent: 0,
    snapId: 1,
    tag: 's1',
    snapshot: true,
    slots: [s1, s1, 0, 0],
  });
  sheep.addVdi({
    ...common,
    vid: s2,
    parent: s1,
    snapId: 2,
    tag: 's2',
    snapshot: true,
    slots: [s2, s1, s2, 0],
  });
  sheep.addVdi({
    ...common,
    vid: working,
    parent: s2,
    snapId: 3,
    snapshot: false,
    slots: [s2, s1, s2, 0],
  });
  sheep.addObject(s1, 0, Buffer.alloc(OBJECT, 1));
  sheep.addObject(s1, 1, Buffer.alloc(OBJECT, 2));
  const changed = Buffer.alloc(OBJECT, 1);
  changed.fill(9, 4096, 8192);
  sheep.addObject(s2, 0, changed);
  sheep.addObject(s2, 2, Buffer.alloc(OBJECT, 3));
  return { sheep, s1, s2, working };
}

describe('vdi-backup against a (fake) sheep daemon', () => {
  let temp: TempDir;
  let cluster: ReturnType<typeof tinyCluster>;
  let url: string;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-cli-sheep-');
    cluster = tinyCluster();
    url = `sheepdog://127.0.0.1:${await cluster.sheep.listen()}/tiny`;
  });
  afterAll(async () => {
    await cluster.sheep.close();
    await temp.remove();
  });

  it('create by tag and by id, the VDI object size, shared objects unread', async () => {
    const output = temp.file('s1-s2.backup');
    const byTag = await vdiBackup(['create', '-F', 's1', '-s', 's2', url, '-o', output, '--json']);
    expect(byTag.code).toBe(0);
    expect(resultJson(byTag.stdout)).toMatchObject({
      'object-size': OBJECT,
      records: 2,
      'data-bytes': 4096 + OBJECT,
      'objects-skipped-shared': 1,
      'objects-skipped-unallocated': 1,
    });
    const byId = await vdiBackup(['create', '-F', '1', '-s', '2', url]);
    expect(byId.stdout.equals(await readFile(output))).toBe(true);
    const wrongSize = await vdiBackup(['create', '-F', '1', '-s', '2', url, '--object-size', '4M']);
    expect(wrongSize.code).toBe(2);
    const missing = await vdiBackup([
      'create',
      '-F',
      's1',
      '-s',
      's9',
      url,
      '-o',
      temp.file('x'),
      '--json',
    ]);
    expect(missing.code).toBe(1);
    expect(resultJson(missing.stdout)).toMatchObject({ code: 'NO_SUCH_SNAPSHOT' });
  });

  it('restore -s s1 makes a new snapshot equal to s2 and a working VDI on the old parent', async () => {
    const stream = await readFile(temp.file('s1-s2.backup'));
    const result = await vdiBackup(['restore', '-s', 's1', url, '--json'], stream);
    expect(result.code).toBe(0);
    const summary = resultJson(result.stdout);
    expect(summary).toMatchObject({ target: 'sheepdog', records: 2, vdi: 'tiny' });
    const restored = Number.parseInt(summary['restored-vdi-id'] as string, 16);
    const working = Number.parseInt(summary['working-vdi-id'] as string, 16);
    const { sheep, s2 } = cluster;
    expect(sheep.readVdi(restored, 0, 4 * OBJECT).equals(sheep.readVdi(s2, 0, 4 * OBJECT))).toBe(
      true,
    );
    expect(sheep.inode(restored)).toMatchObject({ snapshot: true, parent: cluster.s1, snapId: 3 });
    expect(sheep.inode(working)).toMatchObject({ snapshot: false, parent: s2, snapId: 4 });
    expect(sheep.inode(cluster.working)).toMatchObject({ name: '', size: 0 });
  });

  it('an unreachable daemon is exit 1 with SHEEP_UNREACHABLE', async () => {
    const result = await vdiBackup([
      'create',
      '-F',
      '1',
      '-s',
      '2',
      'sheepdog://127.0.0.1:1/tiny',
      '-o',
      temp.file('y'),
      '--json',
    ]);
    expect(result.code).toBe(1);
    expect(resultJson(result.stdout)).toMatchObject({ code: 'SHEEP_UNREACHABLE' });
  });
});
