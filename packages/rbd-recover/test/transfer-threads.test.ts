import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { makeTempDir, type SshdServer, startSshd, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  defaultTransferThreads,
  TRANSFER_THREAD_LIMITS,
  TransferThreads,
} from '../src/assemble/transfer-threads.js';
import type { FakeCluster } from '../src/fixture/index.js';
import { createInventory, loadInventory, parseHostsFile, recoverImage } from '../src/index.js';
import { MiB, oneDiskCluster } from './support/one-disk-cluster.js';

let temp: TempDir;
let cluster: FakeCluster;
let sshd: SshdServer;
let ssh: { identity: string; knownHosts: string };
/** The cluster's inventory over SSH, shared by the tests (recover only reads it). */
let workdir: string;

async function remoteInventory(name: string): Promise<string> {
  const osds = parseHostsFile(
    cluster.osds.map((path) => `${sshd.username}@127.0.0.1:${sshd.port} ${path}\n`).join(''),
  );
  const workdir = temp.file(name);
  const summary = await createInventory(osds, { workdir, ssh });
  expect(summary.osds.every((osd) => osd.status === 'scanned')).toBe(true);
  return workdir;
}

/** The SSH connections sshd serves now (its per-connection children, from /proc). */
async function sshdConnections(): Promise<number> {
  let count = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === sshd.pid) count++;
  }
  return count;
}

/** Every 1 MiB region of `actual` that differs from `expected`. */
function differingRegions(actual: Buffer, expected: Buffer): number[] {
  const differing: number[] = [];
  for (let i = 0; i * MiB < Math.max(actual.length, expected.length); i++) {
    const at = i * MiB;
    if (!actual.subarray(at, at + MiB).equals(expected.subarray(at, at + MiB))) differing.push(i);
  }
  return differing;
}

beforeAll(async () => {
  temp = await makeTempDir('rbd-threads-');
  cluster = await oneDiskCluster(temp.file('cluster'), 'T');
  sshd = await startSshd({ directory: temp.file('sshd') });
  ssh = { identity: sshd.userKey, knownHosts: sshd.knownHosts };
  workdir = await remoteInventory('inventory');
}, 300_000);

afterAll(async () => {
  await sshd?.stop();
  await temp?.remove();
});

describe('transfer threads', () => {
  it('default: 3 threads (one per tar stream of 3 OSDs) on 2 cores and more, none on one core', () => {
    expect(defaultTransferThreads(1)).toBe(0);
    expect(defaultTransferThreads(2)).toBe(3);
    expect(defaultTransferThreads(3)).toBe(3);
    expect(defaultTransferThreads(64)).toBe(3);
  });

  it('a batch streamed on a thread lands in the file, with every start asked first and a checksum per object', async () => {
    const inventory = await loadInventory(workdir);
    const osd = inventory.osds[0];
    const objects = osd?.objects.filter((object) => object.name.startsWith('rbd_data.')) ?? [];
    expect(objects.length).toBeGreaterThan(2);
    const threads = await TransferThreads.create({ ssh, threads: 1 });
    // Fails loudly when the package is not built (the thread runs dist/, not TypeScript).
    expect(threads).toBeDefined();
    const file = temp.file('unit.out');
    const handle = await open(file, 'w+');
    try {
      const events: string[] = [];
      const sums = new Map<number, string>();
      const missing = await (threads as TransferThreads).run(
        {
          host: osd?.osd.host as string,
          address: osd?.osd.ssh as NonNullable<NonNullable<typeof osd>['osd']['ssh']>,
          directory: join(osd?.osd.dataPath as string, 'current'),
          entries: [
            ...objects.map((object, k) => ({
              path: object.path,
              checksum: k % 2 === 0 ? ('sha1' as const) : ('crc32' as const),
              targets: [{ fd: handle.fd, offset: k * MiB, length: MiB }],
            })),
            {
              path: 'DIR_0/no-such-object',
              checksum: 'crc32' as const,
              targets: [{ fd: handle.fd, offset: 0, length: 1 }],
            },
          ],
        },
        objects.length * MiB,
        {
          onStart: (entry) => {
            events.push(`start ${entry}`);
          },
          onProgress: () => {},
          onDone: (entry, bytes, checksum) => {
            events.push(`done ${entry}`);
            sums.set(entry, checksum);
            expect(bytes).toBe(objects[entry]?.size);
          },
        },
      );
      expect(missing).toEqual(['DIR_0/no-such-object']);
      // A small young generation: dead packet buffers are collected sooner (V8's default
      // young generation is 48 MiB, where a thread held ~30 MiB of them).
      expect((threads as TransferThreads).resourceLimits).toEqual([
        expect.objectContaining({
          maxYoungGenerationSizeMb: TRANSFER_THREAD_LIMITS.maxYoungGenerationSizeMb,
        }),
      ]);
      expect(TRANSFER_THREAD_LIMITS.maxYoungGenerationSizeMb).toBeLessThanOrEqual(4);
      expect(events).toEqual(objects.flatMap((_, k) => [`start ${k}`, `done ${k}`]));
      const written = await readFile(file);
      const { createHash } = await import('node:crypto');
      for (const [k, object] of objects.entries()) {
        const original = await readFile(
          join(
            osd?.osd.dataPath as string,
            'current',
            Buffer.from(object.path, 'latin1').toString(),
          ),
        );
        expect(written.subarray(k * MiB, k * MiB + original.length).equals(original)).toBe(true);
        expect(sums.get(k)).toBe(
          k % 2 === 0
            ? createHash('sha1').update(original).digest('hex')
            : crc32(original).toString(16).padStart(8, '0'),
        );
      }
    } finally {
      await threads?.close();
      await handle.close();
    }
  });

  it('prestart: threads start and connect before any batch, which then goes to a connected one', async () => {
    const inventory = await loadInventory(workdir);
    const osd = inventory.osds[0];
    const address = osd?.osd.ssh as NonNullable<NonNullable<typeof osd>['osd']['ssh']>;
    const host = osd?.osd.host as string;
    const object = osd?.objects.find((o) => o.name.startsWith('rbd_data.'));
    const threads = (await TransferThreads.create({ ssh, threads: 3 })) as TransferThreads;
    const file = temp.file('prestart.out');
    const handle = await open(file, 'w+');
    // The earlier tests' connections are gone (their sshd children may take a moment).
    await vi.waitFor(async () => expect(await sshdConnections()).toBe(0), {
      timeout: 60_000,
      interval: 50,
    });
    try {
      threads.prestart([
        { host, address },
        { host, address },
      ]);
      expect(threads.resourceLimits).toHaveLength(2);
      await vi.waitFor(async () => expect(await sshdConnections()).toBe(2), {
        timeout: 60_000,
        interval: 50,
      });
      const missing = await threads.run(
        {
          host,
          address,
          directory: join(osd?.osd.dataPath as string, 'current'),
          entries: [
            {
              path: object?.path as string,
              checksum: 'crc32',
              targets: [{ fd: handle.fd, offset: 0, length: MiB }],
            },
          ],
        },
        MiB,
        { onStart: () => {}, onProgress: () => {}, onDone: () => {} },
      );
      expect(missing).toEqual([]);
      // No third thread and no third connection: the batch ran on a prestarted one.
      expect(threads.resourceLimits).toHaveLength(2);
      expect(await sshdConnections()).toBe(2);
    } finally {
      await threads.close();
      await handle.close();
    }
  });

  it('recover prestarts a thread per SSH OSD (up to its limit), connected while it plans', async () => {
    const prestart = vi.spyOn(TransferThreads.prototype, 'prestart');
    try {
      const report = await recoverImage('rbd/disk', temp.file('prestarted.raw'), {
        workdir,
        ssh,
        transferThreads: 2,
      });
      expect(report.complete).toBe(true);
      const inventory = await loadInventory(workdir);
      expect(prestart).toHaveBeenCalledTimes(1);
      expect(prestart.mock.calls[0]?.[0]).toEqual(
        inventory.osds.map(({ osd }) => ({ host: osd.host, address: osd.ssh })),
      );
    } finally {
      prestart.mockRestore();
    }
  });

  it('recover over SSH on threads equals the image; threads: 0 gives the same on this thread', async () => {
    const expected = cluster.expected.get('rbd/disk') as Buffer;
    const create = vi.spyOn(TransferThreads, 'create');
    try {
      const output = temp.file('threads.raw');
      const report = await recoverImage('rbd/disk', output, { workdir, ssh, transferThreads: 2 });
      const threads = (await create.mock.results[0]?.value) as TransferThreads;
      expect(threads).toBeInstanceOf(TransferThreads);
      // The threads wrote the aligned parts of the objects with O_DIRECT (the test's
      // temporary directory is on a file system that takes it).
      expect(threads.directBytes).toBeGreaterThan(0);
      expect(report.complete).toBe(true);
      expect(differingRegions(await readFile(output), expected)).toEqual([]);
      const inline = temp.file('inline.raw');
      await recoverImage('rbd/disk', inline, { workdir, ssh, transferThreads: 0 });
      expect(await create.mock.results[1]?.value).toBeUndefined();
      expect((await readFile(inline)).equals(expected)).toBe(true);
    } finally {
      create.mockRestore();
    }
  });

  it('a thread that dies mid-transfer: its unfinished objects are read again, the output is whole', async () => {
    const output = temp.file('crash.raw');
    const report = await recoverImage('rbd/disk', output, {
      workdir,
      ssh,
      transferThreads: 1,
      streamsPerHost: 1,
      transferThreadExitAfterBytes: 3 * MiB,
    });
    expect(report.complete).toBe(true);
    expect(report.objectsCopied).toBe(20);
    expect(
      differingRegions(await readFile(output), cluster.expected.get('rbd/disk') as Buffer),
    ).toEqual([]);
  });

  it('a host that drops mid-transfer under threads: retried, the output is whole', async () => {
    let dropped = false;
    const output = temp.file('drop.raw');
    const report = await recoverImage('rbd/disk', output, {
      workdir,
      ssh,
      transferThreads: 2,
      onProgress: (event) => {
        if (!dropped && event.done > 0) {
          dropped = true;
          void sshd.dropConnections();
        }
      },
    });
    expect(dropped).toBe(true);
    expect(report.complete).toBe(true);
    expect(
      differingRegions(await readFile(output), cluster.expected.get('rbd/disk') as Buffer),
    ).toEqual([]);
  });

  it('an aborted run on threads leaves no output; resume copies only what was not finished', async () => {
    const output = temp.file('abort.raw');
    const controller = new AbortController();
    await expect(
      recoverImage('rbd/disk', output, {
        workdir,
        ssh,
        transferThreads: 2,
        streamsPerHost: 1,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.done >= 4 * MiB) controller.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(readFile(output)).rejects.toMatchObject({ code: 'ENOENT' });
    const state = await readFile(`${output}.rbd-recover/state.jsonl`, 'utf8');
    const finished = state.split('\n').filter((line) => line.includes('"event":"done"')).length;
    const report = await recoverImage('rbd/disk', output, { workdir, ssh, resume: true });
    expect(report.objectsResumed).toBe(finished);
    expect(report.objectsCopied).toBe(20 - finished);
    expect(
      differingRegions(await readFile(output), cluster.expected.get('rbd/disk') as Buffer),
    ).toEqual([]);
  });
});
