import { spawn } from 'node:child_process';
import { readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { makeTempDir, type SshdServer, startSshd, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeCluster, generateFakeCluster } from '../src/fixture/index.js';
import {
  createInventory,
  createTransportPool,
  type HostTransport,
  loadInventory,
  type OsdLocation,
  parseHostsFile,
  recoverImage,
  type TransportPool,
} from '../src/index.js';
import { MiB, oneDiskCluster, pattern } from './support/one-disk-cluster.js';

let temp: TempDir;
let cluster: FakeCluster;
let sshd: SshdServer;

/** A fresh copy of the cluster's inventory (the cluster is shared, some tests change it). */
async function inventoryOf(osds: OsdLocation[], name: string, ssh = {}): Promise<string> {
  const workdir = temp.file(name);
  const summary = await createInventory(osds, { workdir, ssh });
  expect(summary.osds.every((osd) => osd.status === 'scanned')).toBe(true);
  return workdir;
}

const localOsds = () => cluster.osds.map((dataPath) => ({ host: 'local', dataPath }));

/** Counts the object files each transport is asked for, and can break a stream once. */
function instrumented(inner: TransportPool, breakFirstStreamAfter?: number) {
  const requested: string[] = [];
  let broken = false;
  const pool: TransportPool = {
    async get(osd) {
      const transport = await inner.get(osd);
      const wrapped: HostTransport = {
        host: transport.host,
        close: () => transport.close(),
        async run(argv, options) {
          const isTar = argv.some((arg) => arg.includes('exec tar'));
          if (isTar && options?.stdin) {
            requested.push(
              ...Buffer.from(options.stdin).toString('latin1').split('\0').filter(Boolean),
            );
          }
          const command = await transport.run(argv, options);
          if (!isTar || broken || breakFirstStreamAfter === undefined) return command;
          broken = true;
          // The host "drops" after this many bytes: the stream errors, the command ends.
          let seen = 0;
          const cut = new PassThrough();
          command.stdout.on('data', (chunk: Buffer) => {
            seen += chunk.byteLength;
            if (seen > breakFirstStreamAfter) {
              command.kill();
              cut.destroy(new Error('connection lost (injected)'));
            } else cut.write(chunk);
          });
          command.stdout.on('end', () => cut.end());
          return { ...command, stdout: cut };
        },
      };
      return wrapped;
    },
    close: () => inner.close(),
  };
  return { pool, requested };
}

beforeAll(async () => {
  temp = await makeTempDir('rbd-faults-');
  cluster = await oneDiskCluster(temp.file('cluster'), 'A');
  sshd = await startSshd({ directory: temp.file('sshd') });
}, 300_000);

afterAll(async () => {
  await sshd?.stop();
  await temp?.remove();
});

describe('faults', () => {
  it('a host that drops mid-transfer: the objects are read again, the output is whole', async () => {
    const workdir = await inventoryOf(localOsds(), 'drop');
    // Local paths read files directly: force the tar path through a transport that looks remote.
    const ssh = { identity: sshd.userKey, knownHosts: sshd.knownHosts };
    const osds = parseHostsFile(
      cluster.osds.map((path) => `${sshd.username}@127.0.0.1:${sshd.port} ${path}\n`).join(''),
    );
    const remote = await inventoryOf(osds, 'drop-ssh', ssh);
    const { pool, requested } = instrumented(createTransportPool(ssh), 3 * MiB);
    const output = temp.file('drop.raw');
    const report = await recoverImage('rbd/disk', output, { workdir: remote, transports: pool });
    expect(report.complete).toBe(true);
    expect((await readFile(output)).equals(cluster.expected.get('rbd/disk') as Buffer)).toBe(true);
    expect(requested.length).toBeGreaterThan(20); // the broken stream's objects were asked again
    await pool.close();
    expect(workdir).toBeDefined();
  });

  it('a real sshd dropping every connection mid-transfer: retried, the output is whole', async () => {
    const ssh = { identity: sshd.userKey, knownHosts: sshd.knownHosts };
    const osds = parseHostsFile(
      cluster.osds.map((path) => `${sshd.username}@127.0.0.1:${sshd.port} ${path}\n`).join(''),
    );
    const workdir = await inventoryOf(osds, 'drop-real', ssh);
    let dropped = false;
    const output = temp.file('drop-real.raw');
    const report = await recoverImage('rbd/disk', output, {
      workdir,
      ssh,
      onProgress: (event) => {
        if (!dropped && event.done > 0) {
          dropped = true;
          void sshd.dropConnections();
        }
      },
    });
    expect(dropped).toBe(true);
    expect(report.complete).toBe(true);
    expect((await readFile(output)).equals(cluster.expected.get('rbd/disk') as Buffer)).toBe(true);
  });

  it('a file that vanished is read from the other replica; gone from both, it is listed', async () => {
    const copy = await generateFakeCluster({
      directory: temp.file('vanish-cluster'),
      osds: 2,
      images: [
        {
          pool: 1,
          name: 'disk',
          format: 2,
          order: 20,
          size: 8 * MiB,
          operations: [{ write: { offset: 0, data: pattern('V', 0, 8 * MiB) } }],
        },
      ],
      xattrs: 'omap',
    });
    const osds = copy.osds.map((dataPath) => ({ host: 'local', dataPath }));
    const workdir = temp.file('vanish');
    await createInventory(osds, { workdir });
    const inventory = await loadInventory(workdir);
    const victim = inventory.osds[0]?.objects.find((object) =>
      object.name.endsWith('0000000000000003'),
    );
    const other = inventory.osds[1]?.objects.find((object) => object.name === victim?.name);
    await rm(join(copy.osds[0] as string, 'current', victim?.path as string));
    const first = await recoverImage('rbd/disk', temp.file('vanish-1.raw'), { workdir });
    expect(first.complete).toBe(true);
    expect(first.states[0]?.fallbacks.map((fallback) => fallback.index)).toEqual([3]);
    expect(
      (await readFile(temp.file('vanish-1.raw'))).equals(copy.expected.get('rbd/disk') as Buffer),
    ).toBe(true);
    await rm(join(copy.osds[1] as string, 'current', other?.path as string));
    // A truncated object elsewhere is read as it is, and reported.
    const short = inventory.osds[0]?.objects.find((object) =>
      object.name.endsWith('0000000000000005'),
    );
    await truncate(join(copy.osds[0] as string, 'current', short?.path as string), 1000);
    const second = await recoverImage('rbd/disk', temp.file('vanish-2.raw'), { workdir });
    expect(second.complete).toBe(false);
    expect(second.states[0]?.zeroFilled.map((missing) => missing.index)).toEqual([3]);
    expect(second.states[0]?.zeroFilled[0]?.reason).toContain('could not be read');
    expect(second.problems.some((problem) => problem.includes('1000 bytes read'))).toBe(true);
  });

  it('replicas of the same epoch that differ (bytes or size) are reported; the first is used', async () => {
    const copy = await generateFakeCluster({
      directory: temp.file('conflict-cluster'),
      osds: 2,
      images: [
        {
          pool: 1,
          name: 'disk',
          format: 2,
          order: 20,
          size: 6 * MiB,
          operations: [{ write: { offset: 0, data: pattern('C', 0, 6 * MiB) } }],
        },
      ],
      xattrs: 'omap',
    });
    const osds = copy.osds.map((dataPath) => ({ host: 'local', dataPath }));
    const workdir = temp.file('conflict');
    await createInventory(osds, { workdir });
    const inventory = await loadInventory(workdir);
    const on = (osd: number, suffix: string) =>
      inventory.osds[osd]?.objects.find((object) => object.name.endsWith(suffix));
    // Both OSDs hold every PG at the same epoch; the second one's copies go wrong.
    const flipped = on(1, '0000000000000002');
    const flippedPath = join(copy.osds[1] as string, 'current', flipped?.path as string);
    const bytes = await readFile(flippedPath);
    bytes[12345] = (bytes[12345] as number) ^ 0xff;
    await writeFile(flippedPath, bytes);
    const shortened = on(1, '0000000000000004');
    await truncate(join(copy.osds[1] as string, 'current', shortened?.path as string), 4096);
    // Listed again after the damage: the sizes compared come from the inventory.
    await createInventory(osds, { workdir, fresh: true });
    const report = await recoverImage('rbd/disk', temp.file('conflict.raw'), { workdir });
    expect(report.complete).toBe(true);
    expect(
      (await readFile(temp.file('conflict.raw'))).equals(copy.expected.get('rbd/disk') as Buffer),
    ).toBe(true);
    expect(report.ties.length).toBeGreaterThan(0);
    const conflicts = report.conflicts;
    expect(conflicts.map((conflict) => conflict.path).sort()).toEqual(
      [on(0, '0000000000000002')?.path, on(0, '0000000000000004')?.path].sort(),
    );
    const bySuffix = (suffix: string) =>
      conflicts.find((conflict) => conflict.path.includes(suffix));
    const content = bySuffix('0000000000000002');
    expect(content?.copies.map((c) => c.size)).toEqual([MiB, MiB]);
    expect(content?.copies[0]?.sha1).toMatch(/^[0-9a-f]{40}$/);
    expect(content?.copies[1]?.sha1).toMatch(/^[0-9a-f]{40}$/);
    expect(content?.copies[0]?.sha1).not.toBe(content?.copies[1]?.sha1);
    expect(bySuffix('0000000000000004')?.copies.map((c) => c.size)).toEqual([MiB, 4096]);
  });

  it('a killed run continues with resume, copying no finished object again', async () => {
    const workdir = await inventoryOf(localOsds(), 'resume');
    const output = temp.file('resume.raw');
    const controller = new AbortController();
    // Local data read through tar (a transport that is not "local"), so the run can be
    // stopped at a byte count rather than at a time: deterministic.
    const local = createTransportPool();
    let seen = 0;
    const stopping: TransportPool = {
      async get(osd) {
        const inner = await local.get(osd);
        return {
          host: 'osdhost',
          close: () => inner.close(),
          async run(argv, options) {
            const command = await inner.run(argv, options);
            // The reader sees nothing past the stop, as when the process is killed there:
            // otherwise a fast machine could deliver the rest of the stream before the
            // abort is noticed, and the run would finish.
            const cut = new PassThrough();
            command.stdout.on('data', (chunk: Buffer) => {
              if (seen > 6 * MiB) return;
              seen += chunk.byteLength;
              cut.write(chunk);
              if (seen > 6 * MiB) {
                controller.abort();
                cut.end();
              }
            });
            command.stdout.on('end', () => cut.end());
            return { ...command, stdout: cut };
          },
        };
      },
      close: () => local.close(),
    };
    await expect(
      recoverImage('rbd/disk', output, {
        workdir,
        streamsPerHost: 1,
        signal: controller.signal,
        transports: stopping,
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const state = await readFile(`${output}.rbd-recover/state.jsonl`, 'utf8');
    const finished = state.split('\n').filter((line) => line.includes('"event":"done"')).length;
    expect(finished).toBeGreaterThan(0);
    expect(finished).toBeLessThan(20);
    // No file under the output's name; a rerun without resume is refused.
    await expect(readFile(output)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(recoverImage('rbd/disk', output, { workdir })).rejects.toMatchObject({
      code: 'EEXIST',
    });
    const report = await recoverImage('rbd/disk', output, { workdir, resume: true });
    expect(report.objectsResumed).toBe(finished);
    expect(report.objectsCopied).toBe(20 - finished);
    const rebuilt = await readFile(output);
    const wanted = cluster.expected.get('rbd/disk') as Buffer;
    const differing = [];
    for (let i = 0; i < 24; i++)
      if (!rebuilt.subarray(i * MiB, (i + 1) * MiB).equals(wanted.subarray(i * MiB, (i + 1) * MiB)))
        differing.push(i);
    expect(differing).toEqual([]);
  });

  it('an OSD whose ceph-osd runs is refused', async () => {
    const fake = temp.file('ceph-osd');
    await symlink('/usr/bin/python3', fake);
    const child = spawn(fake, ['-c', 'import time; time.sleep(60)', '-i', '0'], {
      stdio: 'ignore',
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const summary = await createInventory(
        [{ host: 'local', dataPath: cluster.osds[0] as string }],
        {
          workdir: temp.file('running'),
        },
      );
      expect(summary.osds[0]?.status).toBe('failed');
      expect((summary.osds[0]?.error as { code?: string } | undefined)?.code).toBe('OSD_RUNNING');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
