import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeSheep, makeTempDir, SheepOp, sheepVdiHash, type TempDir } from '@x/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, openBackupSources, restoreBackup } from '../src/index.js';
import { alphaCluster, pattern, VID } from './support/alpha-cluster.js';
import { collector } from './support/memory.js';
import { FIXTURES, type SheepdogFixtures, sheepdogFixtures } from './support/sheepdog-fixtures.js';
import { dogStream } from './support/streams.js';

const WRITES = new Set<number>([
  SheepOp.WRITE_OBJ,
  SheepOp.CREATE_AND_WRITE_OBJ,
  SheepOp.NEW_VDI,
  SheepOp.DEL_VDI,
]);

/** The REQ header lines of a captured exchange, with the payload that followed each. */
async function capturedRequests(file: string): Promise<Buffer[]> {
  const text = await readFile(join(FIXTURES, file), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.startsWith('REQ '))
    .map((line) => Buffer.from(line.slice(4).replaceAll(' ', ''), 'hex'))
    .filter((header) => header[1] !== undefined && (header[1] as number) < 0x80);
}

/** A request header without what legitimately differs: proto_ver (we send 1) and id. */
const comparable = (header: Buffer) => {
  const copy = Buffer.from(header);
  copy[0] = 0;
  copy.writeUInt32LE(0, 8);
  return copy.toString('hex');
};

describe('Sheepdog: a fake sheep daemon built from the real fixtures', () => {
  let fixtures: SheepdogFixtures;
  let temp: TempDir;
  let sheep: FakeSheep | undefined;
  beforeAll(async () => {
    fixtures = await sheepdogFixtures();
    temp = await makeTempDir('vdi-sheep-');
  });
  afterEach(async () => {
    await sheep?.close();
    sheep = undefined;
  });
  afterAll(() => temp.remove());

  async function start(options?: { cleanWorking?: boolean }) {
    const cluster = alphaCluster(fixtures, options);
    sheep = cluster.sheep;
    const port = await sheep.listen();
    return { ...cluster, url: `sheepdog://127.0.0.1:${port}/alpha` };
  }

  async function backup(url: string, from: string, to: string) {
    const sources = await openBackupSources({ source: url, from, to });
    const sink = collector();
    try {
      const result = await createBackup(sources.from, sources.to, {
        output: sink,
        objectSize: sources.objectSize,
        sharedRanges: sources.sharedRanges,
      });
      return { result, bytes: sink.bytes() };
    } finally {
      await sources.close();
    }
  }

  it('names VDIs as sheep does: FNV-1a of the name', () => {
    expect(sheepVdiHash('alpha')).toBe(VID.snap0);
  });

  it.each([
    ['snap0', 'snap1', 'alpha-snap0-to-snap1'],
    ['snap1', 'snap2', 'alpha-snap1-to-snap2'],
    ['2', '3', 'alpha-snap1-to-snap2'],
    ['snap2', 'snap2', 'alpha-snap2-to-snap2'],
  ])('create -F %s -s %s equals the real dog output', async (from, to, name) => {
    const { url } = await start();
    const { bytes } = await backup(url, from, to);
    expect(bytes.equals(await readFile(fixtures.backup(name)))).toBe(true);
  });

  it('reads only objects that can differ, with the request headers dog sends (bar proto_ver and id)', async () => {
    const { url, sheep: server } = await start();
    const { result } = await backup(url, 'snap1', 'snap2');
    expect(result.objectsSkippedUnallocated).toBe(8);
    const captured = new Set((await capturedRequests('wire-backup.txt')).map(comparable));
    const dataReads = sheep?.requests.filter(
      (request) =>
        request.opcode === SheepOp.READ_OBJ && !(request.header.readBigUInt64LE(16) >> 63n),
    );
    expect(dataReads?.length).toBeGreaterThan(0);
    for (const request of dataReads ?? [])
      expect(captured.has(comparable(request.header))).toBe(true);
    const lookups = sheep?.requests.filter((request) => request.opcode === SheepOp.GET_VDI_INFO);
    for (const request of lookups ?? []) {
      expect(captured.has(comparable(request.header))).toBe(true);
      expect(request.payload.subarray(256).toString().replace(/\0+$/, '')).toMatch(/^snap[12]$/);
    }
    // The same snapshot on both sides: every object is shared, none is read.
    server.requests.length = 0;
    const same = await backup(url, 'snap2', 'snap2');
    expect(same.result.bytesRead).toBe(0);
    expect(
      sheep?.requests.some((r) => r.opcode === SheepOp.READ_OBJ && r.dataLength === 4 << 20),
    ).toBe(false);
  });

  it('pipelined requests answered out of order still land in the right buffers', async () => {
    const { url, sheep: server } = await start();
    server.reorder = true;
    const { bytes } = await backup(url, 'snap0', 'snap1');
    expect(bytes.equals(await readFile(fixtures.backup('alpha-snap0-to-snap1')))).toBe(true);
  });

  it('restore leaves the end state dog left (fixture inodes ed202e, ed202f, ed2030)', async () => {
    const { url, images, sheep: server } = await start();
    const result = await restoreBackup(fixtures.backup('alpha-snap1-to-snap2'), {
      type: 'sheepdog',
      url,
      snapshot: 'snap1',
      discardWorkingChanges: true,
    });
    expect(result).toMatchObject({ records: 6, bytesWritten: 8704 });
    expect(result.describe).toMatchObject({
      'restored-vdi-id': 'ed202f',
      'working-vdi-id': 'ed2030',
    });
    const expected = (vid: string) => {
      const probe = new FakeSheep();
      probe.inodes.set(Number.parseInt(vid, 16), fixtures.inode(vid));
      return probe.inode(Number.parseInt(vid, 16));
    };
    expect(sheep?.inode(0xed202e)).toEqual(expected('ed202e'));
    expect(sheep?.inode(0xed202f)).toEqual(expected('ed202f'));
    expect(sheep?.inode(0xed2030)).toEqual(expected('ed2030'));
    expect(sheep?.readVdi(0xed202f, 0, 64 << 20).equals(images.snap2 as Buffer)).toBe(true);
    expect(sheep?.readVdi(0xed2030, 0, 64 << 20).equals(images.snap2 as Buffer)).toBe(true);
    // The writes: dog's captured restore writes, bar proto_ver, id and the VDI ids.
    const captured = (await capturedRequests('wire-restore.txt')).filter(
      (h) => h[1] === SheepOp.CREATE_AND_WRITE_OBJ,
    );
    const ours = server.requests.filter((r) => r.opcode === SheepOp.CREATE_AND_WRITE_OBJ);
    expect(ours.map((r) => r.header.subarray(1, 8).toString('hex'))).toEqual(
      captured.map((h) => h.subarray(1, 8).toString('hex')),
    );
    expect(ours.map((r) => r.header.subarray(28, 48).toString('hex'))).toEqual(
      captured.map((h) => h.subarray(28, 48).toString('hex')),
    );
  });

  it('refuses to discard unsnapshotted writes of the working VDI unless told to', async () => {
    const { url } = await start();
    await expect(
      restoreBackup(fixtures.backup('alpha-snap1-to-snap2'), {
        type: 'sheepdog',
        url,
        snapshot: 'snap1',
      }),
    ).rejects.toMatchObject({ code: 'WORKING_VDI_CHANGED' });
    expect(sheep?.requests.some((request) => WRITES.has(request.opcode))).toBe(false);
  });

  it.each([
    ['a cut stream', () => dogStream([[0, 0, 4096]]).subarray(0, 1000), 'snap1', 'TRUNCATED'],
    ['a stream for a larger disk', () => dogStream([[16, 0, 512]]), 'snap1', 'TOO_LARGE'],
    ['a missing snapshot', () => dogStream([]), 'snap9', 'NO_SUCH_SNAPSHOT'],
    ['a missing snapshot id', () => dogStream([]), '42', 'NO_SUCH_SNAPSHOT'],
  ])('%s changes nothing on the cluster', async (_what, stream, snapshot, code) => {
    const { url } = await start({ cleanWorking: true });
    const path = temp.file('bad.backup');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, stream());
    await expect(restoreBackup(path, { type: 'sheepdog', url, snapshot })).rejects.toMatchObject({
      code,
    });
    expect(sheep?.requests.some((request) => WRITES.has(request.opcode))).toBe(false);
  });

  it('an unknown VDI and an unreachable daemon are typed errors', async () => {
    const { url } = await start();
    await expect(
      openBackupSources({ source: url.replace('alpha', 'omega'), from: '1', to: '2' }),
    ).rejects.toMatchObject({
      code: 'NO_SUCH_VDI',
    });
    const port = Number(new URL(url.replace('sheepdog:', 'http:')).port);
    await sheep?.close();
    sheep = undefined;
    await expect(
      openBackupSources({ source: `sheepdog://127.0.0.1:${port}/alpha`, from: '1', to: '2' }),
    ).rejects.toMatchObject({ code: 'SHEEP_UNREACHABLE' });
  });

  it('a daemon that drops the connection mid-object: create fails typed, no output', async () => {
    const { url, sheep: server } = await start();
    let dataReads = 0;
    server.fault = (request) =>
      request.opcode === SheepOp.READ_OBJ && request.dataLength === 4 << 20 && ++dataReads === 3
        ? 'drop-mid-data'
        : undefined;
    const sources = await openBackupSources({ source: url, from: 'snap0', to: 'snap1' });
    const output = temp.file('never.backup');
    await expect(
      createBackup(sources.from, sources.to, { output, sharedRanges: sources.sharedRanges }),
    ).rejects.toMatchObject({ code: 'SHEEP_PROTOCOL' });
    await sources.close();
    await expect(readFile(output)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readFile(`${output}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a daemon that drops the connection mid-restore: the VDI is left as it was', async () => {
    const { url, images, sheep: server } = await start({ cleanWorking: true });
    let creates = 0;
    server.fault = (request) =>
      request.opcode === SheepOp.CREATE_AND_WRITE_OBJ && ++creates === 3 ? 'drop' : undefined;
    await expect(
      restoreBackup(fixtures.backup('alpha-snap1-to-snap2'), {
        type: 'sheepdog',
        url,
        snapshot: 'snap1',
      }),
    ).rejects.toMatchObject({ code: 'SHEEP_PROTOCOL' });
    const live = [...(sheep?.inodes.keys() ?? [])]
      .map((vid) => sheep?.inode(vid))
      .filter((inode) => inode?.name === 'alpha');
    // The three snapshots as they were, and a working VDI on snap2 reading as snap2 did.
    expect(live.filter((inode) => inode?.snapshot).map((inode) => inode?.vid)).toEqual([
      VID.snap0,
      VID.snap1,
      VID.snap2,
    ]);
    const working = live.filter((inode) => !inode?.snapshot);
    expect(working).toHaveLength(1);
    expect(working[0]?.parent).toBe(VID.snap2);
    expect(working[0]?.slots).toEqual(sheep?.inode(VID.snap2)?.slots);
    expect(
      sheep?.readVdi(working[0]?.vid as number, 0, 64 << 20).equals(images.snap2 as Buffer),
    ).toBe(true);
  });

  it('the fixture pattern helper matches the images', () => {
    // v1 at [0, 4 MiB) in snap1, with "XYZ" at 13 only from snap2 on.
    const images = alphaCluster(fixtures).images;
    expect(images.snap1?.subarray(512, 1024).equals(pattern('v1', 512, 512))).toBe(true);
    sheep = undefined;
  });
});
