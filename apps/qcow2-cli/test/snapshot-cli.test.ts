import { access, copyFile, readFile } from 'node:fs/promises';
import { makeTempDir, pokeBytes, pokeU64BE, readU32BE, readU64BE, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2, qemuImage } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-snapshot-');
afterAll(() => temp.remove());

const OFFSET_MASK = 0x00fffffffffffe00n;
let pristine: string;
/** An image with snapshot s1 (0x11 over the first MiB) and a later write of 0x22 over it. */
let withSnapshot: string;
let snapshotRaw: Buffer;
let n = 0;

beforeAll(async () => {
  pristine = await qemuImage('cli-snapshot-base', '64M', ['write -P 0x11 0 1M']);
  withSnapshot = temp.file('with-snapshot.qcow2');
  await copyFile(pristine, withSnapshot);
  await runPeerOk('qemu-img', ['snapshot', '-c', 's1', withSnapshot]);
  await runPeerOk('qemu-io', ['-c', 'write -P 0x22 0 512k', withSnapshot]);
  await runPeerOk('qemu-img', [
    'convert',
    '-O',
    'raw',
    '-l',
    's1',
    withSnapshot,
    `${withSnapshot}.s1`,
  ]);
  snapshotRaw = await readFile(`${withSnapshot}.s1`);
});

async function copy(from: string): Promise<string> {
  const path = temp.file(`snap-${n++}.qcow2`);
  await copyFile(from, path);
  return path;
}

async function guest(path: string): Promise<Buffer> {
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', path, `${path}.raw`]);
  return readFile(`${path}.raw`);
}

/** qemu-img check finds no errors and no leaks (its JSON leaves zero counts out). */
async function qemuCheckClean(path: string): Promise<void> {
  const result = await runPeerOk('qemu-img', ['check', '--output=json', path]);
  const report = JSON.parse(result.stdout);
  expect({ corruptions: report.corruptions ?? 0, leaks: report.leaks ?? 0 }).toEqual({
    corruptions: 0,
    leaks: 0,
  });
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('qcow2 snapshot list / create / delete', () => {
  it('lists no snapshots, creates them like qemu-img and lists them with its JSON keys', async () => {
    const path = await copy(pristine);
    expect(await qcow2('snapshot', 'list', path)).toMatchObject({
      code: 0,
      stdout: 'no snapshots\n',
    });
    expect(JSON.parse((await qcow2('snapshot', 'list', '--json', path)).stdout)).toEqual([]);

    const created = await qcow2('snapshot', 'create', path, 'first');
    expect(created).toMatchObject({ code: 0, stdout: 'created snapshot 1 "first"\n' });
    const json = await qcow2('snapshot', 'create', '--json', path, 'second');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      id: '2',
      name: 'second',
      'disk-size': 64 << 20,
    });

    const listed = await qcow2('snapshot', 'list', path);
    expect(listed.stdout).toMatch(/^ID\s+TAG/);
    expect(listed.stdout).toMatch(/\n1\s+first\s+0 B \d{4}-\d\d-\d\d /);
    expect(listed.stdout).toMatch(/\n2\s+second\s/);

    const ours = JSON.parse((await qcow2('snapshot', 'list', '--json', path)).stdout);
    const theirs = JSON.parse(
      (await runPeerOk('qemu-img', ['info', '--output=json', path])).stdout,
    ).snapshots;
    // Same keys and values as qemu-img (which leaves disk-size out); ours adds disk-size.
    expect(ours).toMatchObject(theirs);
    expect(ours.map((entry: { 'disk-size': number }) => entry['disk-size'])).toEqual([
      64 << 20,
      64 << 20,
    ]);
    await qemuCheckClean(path);
  });

  it('deletes by id or name, and all but one with --all-except', async () => {
    const path = await copy(pristine);
    for (const name of ['a', 'b', 'c', 'd']) await qcow2('snapshot', 'create', path, name);
    expect(await qcow2('snapshot', 'delete', path, 'b')).toMatchObject({
      code: 0,
      stdout: 'deleted snapshot 2 "b"\n',
    });
    const deleted = await qcow2('snapshot', 'delete', '--json', path, '1');
    expect(JSON.parse(deleted.stdout).map((entry: { name: string }) => entry.name)).toEqual(['a']);
    const rest = await qcow2('snapshot', 'delete', '--json', '--all-except', 'd', path);
    expect(rest.code).toBe(0);
    expect(JSON.parse(rest.stdout).map((entry: { id: string }) => entry.id)).toEqual(['3']);
    const left = JSON.parse((await qcow2('snapshot', 'list', '--json', path)).stdout);
    expect(left.map((entry: { name: string }) => entry.name)).toEqual(['d']);
    await qemuCheckClean(path);
  });
});

describe('qcow2 snapshot apply', () => {
  it('reverts a healthy image as qemu-img does (no rescue)', async () => {
    const path = await copy(withSnapshot);
    const theirs = await copy(withSnapshot);
    await runPeerOk('qemu-img', ['snapshot', '-a', 's1', theirs]);
    const result = await qcow2('snapshot', 'apply', '--json', path, 's1');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ id: '1', name: 's1', rescue: null });
    expect(Buffer.compare(await readFile(path), await readFile(theirs))).toBe(0);
    expect(await exists(`${path}.qcow2-undo`)).toBe(false);
  });

  it('rescues an image whose active L1 entry points past the end; undo puts it back', async () => {
    const path = await copy(withSnapshot);
    const l1 = Number(await readU64BE(path, 40));
    await pokeU64BE(path, l1, 0x8000_0000_4000_0000n);
    const damaged = await readFile(path);

    const result = await qcow2('snapshot', 'apply', path, 's1');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('reverted to snapshot 1 "s1" by a rescue');
    expect(result.stdout).toMatch(/active L1 table entry 0 .*past the end of the file/);
    expect(result.stdout).toContain(`undo with: qcow2 undo ${path}`);
    expect(result.stdout).toContain('check afterwards: clean');
    await qemuCheckClean(path);
    expect(Buffer.compare(await guest(path), snapshotRaw)).toBe(0);
    expect((await qcow2('check', path)).code).toBe(0);

    expect((await qcow2('undo', path)).code).toBe(0);
    expect(Buffer.compare(await readFile(path), damaged)).toBe(0);
  });

  it('--json reports the rescue: what was damaged and what was done', async () => {
    const path = await copy(withSnapshot);
    const refcountTable = Number(await readU64BE(path, 48));
    const clusterSize = 2 ** (await readU32BE(path, 20));
    await pokeBytes(path, refcountTable, Buffer.alloc(clusterSize, 0x5a));
    const result = await qcow2('snapshot', 'apply', '--json', path, '1');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({
      id: '1',
      rescue: {
        damage: [{ kind: 'refcount-table-entry' }],
        exitCodeBefore: 4,
        exitCode: 0,
        undoLog: `${path}.qcow2-undo`,
        after: { verdict: 'clean' },
      },
    });
    expect(json.rescue.l1TableOffset % clusterSize).toBe(0);
    await qemuCheckClean(path);
    expect(Buffer.compare(await guest(path), snapshotRaw)).toBe(0);
  });

  it('refuses (exit 1, SNAPSHOT_DAMAGED) when the snapshot tables are damaged too', async () => {
    const path = await copy(withSnapshot);
    await pokeU64BE(path, Number(await readU64BE(path, 40)), 0x8000_0000_4000_0000n);
    const snapshotsOffset = Number(await readU64BE(path, 64));
    const snapshotL1 = Number(await readU64BE(path, snapshotsOffset));
    const snapshotL2 = Number((await readU64BE(path, snapshotL1)) & OFFSET_MASK);
    await pokeU64BE(path, snapshotL2, 0x7777_7777_7777_7777n);
    const before = await readFile(path);
    const result = await qcow2('snapshot', 'apply', '--json', path, 's1');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'SNAPSHOT_DAMAGED' });
    expect(result.stderr).toMatch(/cannot revert to snapshot 1 \(s1\).*Nothing was written/);
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    expect(await exists(`${path}.qcow2-undo`)).toBe(false);
  });
});

describe('qcow2 snapshot exit codes', () => {
  it('exits 1 with a typed JSON error for a missing snapshot', async () => {
    const result = await qcow2('snapshot', 'apply', '--json', withSnapshot, 'nope');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'NO_SUCH_SNAPSHOT' });
    expect((await qcow2('snapshot', 'delete', withSnapshot, 'nope')).code).toBe(1);
  });

  it('exits 2 on usage errors', async () => {
    for (const args of [
      ['snapshot', 'frob', withSnapshot],
      ['snapshot', 'create', withSnapshot],
      ['snapshot', 'apply', withSnapshot],
      ['snapshot', 'create', '--all-except', '1', withSnapshot, 'x'],
      ['snapshot', 'delete', '--all-except', '1', withSnapshot, 's1'],
      ['snapshot', 'list', '--undo-log', 'x', withSnapshot],
      ['snapshot'],
    ]) {
      const result = await qcow2(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
    }
  });

  it('exits 1 on a file that is not qcow2', async () => {
    const path = temp.file('not.qcow2');
    await copyFile(`${withSnapshot}.s1`, path);
    const result = await qcow2('snapshot', 'list', '--json', path);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'NOT_QCOW2' });
  });
});
