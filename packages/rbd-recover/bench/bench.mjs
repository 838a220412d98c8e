// @x/rbd-recover benchmarks. Protocol and method: tools/bench/README.md. Whole
// processes, Node's start-up included; a real OpenSSH server on 127.0.0.1 (started
// here, generated keys) serves the OSDs, as the tests do.
//
// Input (made once, cached in .fixtures/): a format 2 image of N objects of 4 MiB
// (non-zero data) spread over 3 FileStore OSD data paths (8 PGs, one copy each),
// written by @x/rbd-recover/fixture; N = 1,024 (4 GiB), --quick: 128 (512 MiB). Its
// inventory is made once over SSH before timing.
//
// Cases (what is timed):
// - recover-ssh: `rbd-recover recover rbd/bench -o out.raw` over SSH (3 OSDs on one
//   host), against
//   · the original tool's method: one `ssh host cat <object> | dd seek=<n>` per object,
//     serially (target: ours ≥ 10× faster, ratio ≤ 0.1);
//   · one `ssh host 'cat <every object>' > /dev/null` stream (the list on stdin,
//     `xargs -0 cat`), the transport's ceiling
//     (target: ≥ 70% of its throughput, ratio ≤ 1.43), peak RSS ≤ 256 MiB;
//   · for information: that stream with ssh2's cipher (aes128-gcm), and ssh2 alone
//     reading it to nowhere (bench/ssh2-floor.mjs: what ssh2 costs, without recover).
//   RBD_BENCH_SKIP_ORIGINAL=1 leaves out only the original's method (10+ minutes a run
//   on the 4 GiB image): for iterating on the stream row; the full row needs it.
// - database-100k: `rbd-recover database` over one local OSD of 100,000 object files
//   (--quick: 20,000) in split DIR_ directories, against a bare
//   `find current -type f -printf '%s %p\n'` (target ratio ≤ 3).
import { rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCases } from '@x/bench';
import { createInventory } from '@x/rbd-recover';
import { fakeObjectHash, writeFakeOsd } from '@x/rbd-recover/fixture';
import { cachedFixture, startSshd } from '@x/test-utils';

const packageRoot = join(fileURLToPath(import.meta.url), '..', '..');
const bin = join(packageRoot, '..', '..', 'apps', 'rbd-recover-cli', 'bin', 'rbd-recover.js');
const MiB = 1 << 20;
const PG_NUM = 8;
const OSDS = 3;

const u32 = (v) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const u64 = (v) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const str = (s) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const object = (name, snap = 'head') => ({
  name,
  key: '',
  namespace: '',
  snap,
  hash: fakeObjectHash(name),
  pool: 1,
});

/** 3 OSDs holding a format 2 image of `count` full 4 MiB objects, one copy of each PG. */
async function imageCluster(count) {
  return cachedFixture(
    packageRoot,
    `bench-cluster-${count}`,
    `bench cluster v1 ${count}`,
    async (dir) => {
      const id = 'bench0000001';
      const block = Buffer.alloc(4 * MiB);
      for (let i = 0; i < block.length; i++) block[i] = 0x41 + (i % 53);
      const objects = [
        { object: object('rbd_id.bench'), data: str(id) },
        {
          object: object(`rbd_header.${id}`),
          data: Buffer.alloc(0),
          omap: new Map([
            ['size', u64(count * 4 * MiB)],
            ['order', Buffer.from([22])],
            ['object_prefix', str(`rbd_data.${id}`)],
            ['features', u64(1)],
            ['snap_seq', u64(0)],
          ]),
        },
        {
          object: object('rbd_directory'),
          data: Buffer.alloc(0),
          omap: new Map([[`name_bench`, str(id)]]),
        },
      ];
      for (let n = 0; n < count; n++) {
        const name = `rbd_data.${id}.${n.toString(16).padStart(16, '0')}`;
        objects.push({
          object: object(name),
          data: async (path) => {
            const handle = await open(path, 'w');
            block.write(`object ${n} `, 0);
            await handle.write(block);
            await handle.close();
          },
        });
      }
      for (let osd = 0; osd < OSDS; osd++) {
        await writeFakeOsd(join(dir, `osd.${osd}`), {
          pgs: Array.from({ length: PG_NUM }, (_, seed) => ({ pool: 1, seed, epoch: 10 })).filter(
            ({ seed }) => seed % OSDS === osd,
          ),
          pgNum: () => PG_NUM,
          objects,
          osdMap: { epoch: 9, pools: [{ id: 1, name: 'rbd' }] },
          whoami: osd,
          xattrs: 'omap',
        });
      }
    },
  );
}

/** One OSD of `count` small object files, split into DIR_ levels as FileStore does. */
async function manyFiles(count) {
  return cachedFixture(
    packageRoot,
    `bench-files-${count}`,
    `bench files v1 ${count}`,
    async (dir) => {
      const objects = [];
      for (let n = 0; n < count; n++) {
        objects.push({
          object: object(`rbd_data.many.${n.toString(16).padStart(16, '0')}`),
          data: Buffer.alloc(0),
        });
      }
      await writeFakeOsd(join(dir, 'osd.0'), {
        pgs: Array.from({ length: PG_NUM }, (_, seed) => ({ pool: 1, seed, epoch: 10 })),
        pgNum: () => PG_NUM,
        objects,
        whoami: 0,
        xattrs: 'omap',
      });
    },
  );
}

let sshd;
let sshdDirectory;
const scratch = await cachedFixture(packageRoot, 'bench-scratch', 'scratch v1', async () => {});

await runCases([
  {
    name: 'recover-ssh',
    prepare: async ({ quick }) => {
      const count = quick ? 128 : 1024;
      const cluster = await imageCluster(count);
      // A directory of this run's own: startSshd wants it empty (ssh-keygen waits at an
      // "Overwrite?" prompt when a reused pid finds an earlier run's keys).
      sshdDirectory = join(scratch, `sshd-${process.pid}-${Date.now()}`);
      sshd = await startSshd({ directory: sshdDirectory });
      const host = `${sshd.username}@127.0.0.1:${sshd.port}`;
      const osds = Array.from({ length: OSDS }, (_, osd) => ({
        host,
        ssh: { hostname: '127.0.0.1', port: sshd.port, username: sshd.username },
        dataPath: join(cluster, `osd.${osd}`),
      }));
      const workdir = join(scratch, 'work');
      const ssh = { identity: sshd.userKey, knownHosts: sshd.knownHosts };
      await createInventory(osds, { workdir, ssh, fresh: true });
      const sshArgs = `-p ${sshd.port} -i ${sshd.userKey} -o UserKnownHostsFile=${sshd.knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes ${sshd.username}@127.0.0.1`;
      // The object files, in offset order, with the OSD they are on.
      const files = [];
      for (let osd = 0; osd < OSDS; osd++) {
        const { execFileSync } = await import('node:child_process');
        const list = execFileSync(
          'find',
          [join(cluster, `osd.${osd}`, 'current'), '-name', 'rbd\\\\udata.*'],
          {
            encoding: 'utf8',
          },
        );
        for (const path of list.split('\n').filter(Boolean)) {
          const n = Number.parseInt(/\.([0-9a-f]{16})__head/.exec(path)[1], 16);
          files.push({ n, path });
        }
      }
      files.sort((a, b) => a.n - b.n);
      const quote = (path) => `'${path.replaceAll("'", "'\\''")}'`;
      const original = join(scratch, 'original.sh');
      writeFileSync(
        original,
        `#!/bin/sh\nset -e\nout="$1"\n: > "$out"\ntruncate -s ${count * 4 * MiB} "$out"\n${files
          .map(
            ({ n, path }) =>
              `ssh ${sshArgs} cat ${quote(quote(path))} | dd of="$out" bs=4M seek=${n} conv=notrunc status=none`,
          )
          .join('\n')}\n`,
      );
      // The list goes on stdin: 1,024 paths on ssh's command line passed the remote
      // shell's 128 KiB limit for one argument (E2BIG) in a deep checkout.
      const list = join(scratch, `stream-files-${count}`);
      writeFileSync(list, files.map(({ path }) => `${path}\0`).join(''));
      const stream = join(scratch, 'stream.sh');
      writeFileSync(
        stream,
        `#!/bin/sh\nexec ssh ${sshArgs} 'xargs -0 cat --' < ${quote(list)} > /dev/null\n`,
      );
      // The same with the cipher ssh2 negotiates (ssh's default is chacha20-poly1305).
      const streamGcm = join(scratch, 'stream-gcm.sh');
      writeFileSync(
        streamGcm,
        `#!/bin/sh\nexec ssh -c aes128-gcm@openssh.com ${sshArgs} 'xargs -0 cat --' < ${quote(list)} > /dev/null\n`,
      );
      const ours = join(scratch, 'ours.raw');
      const theirs = join(scratch, 'original.raw');
      return {
        pkg: '@x/rbd-recover',
        ours: {
          name: 'rbd-recover recover (ssh)',
          argv: [
            'sh',
            '-c',
            `rm -rf "$1.rbd-recover"; exec "$0" "$2" recover rbd/bench -o "$1" --workdir "$3" -i "$4" --known-hosts "$5" --progress never`,
            process.execPath,
            ours,
            bin,
            workdir,
            sshd.userKey,
            sshd.knownHosts,
          ],
          outputs: [ours],
        },
        peers: [
          ...(process.env.RBD_BENCH_SKIP_ORIGINAL === '1'
            ? []
            : [
                {
                  name: 'original: ssh cat | dd per object',
                  argv: ['sh', original, theirs],
                  outputs: [theirs],
                  target: { ratio: 0.1 },
                },
              ]),
          {
            name: "ssh 'cat <all objects>' > /dev/null",
            argv: ['sh', stream],
            outputs: [],
            target: { ratio: 1.43, peakRssKiB: 256 * 1024 },
          },
          // Information: the peer with our cipher, and ssh2 alone reading the same stream
          // to nowhere (the transport's floor in a Node process; see ssh2-floor.mjs).
          {
            name: "ssh -c aes128-gcm 'cat <all objects>' (info)",
            argv: ['sh', streamGcm],
            outputs: [],
          },
          {
            name: 'bare ssh2 reading the same stream (info)',
            argv: [
              process.execPath,
              join(packageRoot, 'bench', 'ssh2-floor.mjs'),
              '127.0.0.1',
              String(sshd.port),
              sshd.username,
              sshd.userKey,
              sshd.knownHosts,
              list,
            ],
            outputs: [],
          },
        ],
      };
    },
  },
  {
    name: 'database-100k',
    prepare: async ({ quick }) => {
      const count = quick ? 20_000 : 100_000;
      const tree = await manyFiles(count);
      const hosts = join(scratch, 'hosts-many.txt');
      writeFileSync(hosts, `local ${join(tree, 'osd.0')}\n`);
      return {
        pkg: '@x/rbd-recover',
        ours: {
          name: 'rbd-recover database',
          argv: [
            process.execPath,
            bin,
            'database',
            '--hosts',
            hosts,
            '--fresh',
            '--workdir',
            join(scratch, 'work-many'),
            '--progress',
            'never',
          ],
          outputs: [],
        },
        peers: [
          {
            name: "find current -type f -printf '%s %p\\n'",
            argv: [
              'sh',
              '-c',
              `find "$0" -type f -printf '%s %p\\n' > /dev/null`,
              join(tree, 'osd.0', 'current'),
            ],
            outputs: [],
          },
        ],
        target: { ratio: 3 },
      };
    },
  },
]);
await sshd?.stop();
if (sshdDirectory) rmSync(sshdDirectory, { recursive: true, force: true });
