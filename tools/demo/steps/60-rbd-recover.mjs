// rbd-recover: a fake two-OSD FileStore cluster written by the FileStore rules (one OSD
// stopped early, so its replicas are stale), then the original tool's workflow with the
// rbd-recover CLI: database, list, lookup, recover the head and every snapshot (a raw
// directory and one QCOW2 image), each checked against what the simulated client wrote.
// Needs only Node and the usual find/sh: the SnapSets are spilled into omap, so no xattr
// tool is used.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openQcow2 } from '@x/qcow2';
import { generateFakeCluster } from '@x/rbd-recover/fixture';

const MiB = 1 << 20;

function pattern(tag, offset, length) {
  const out = Buffer.alloc(length, 0x61 + (tag.charCodeAt(0) % 26));
  for (let at = 0; at < length; at += 512)
    out.write(`${tag} off=${(offset + at).toString(16)} `, at);
  return out;
}
const write = (tag, offset, length) => ({ write: { offset, data: pattern(tag, offset, length) } });

export default async function rbdRecoverDemo(demo) {
  demo.heading('rbd-recover: rebuild RBD images and snapshots from FileStore OSDs');
  const cluster = await generateFakeCluster({
    directory: join(demo.directory, 'cluster'),
    osds: 2,
    images: [
      {
        pool: 1,
        name: 'vm-disk',
        format: 2,
        size: 64 * MiB,
        operations: [
          write('A', 0, 24 * MiB),
          { snapshot: 'before-upgrade' },
          write('B', 4 * MiB, 2 * MiB),
          { discard: { offset: 8 * MiB, length: 4 * MiB } },
          { snapshot: 'after-upgrade' },
          write('C', 40 * MiB, 1 * MiB),
        ],
      },
      { pool: 1, name: 'legacy', format: 1, size: 16 * MiB, operations: [write('D', 0, 5 * MiB)] },
    ],
    // osd.1 stopped before the last write: its PGs have older epochs.
    staleAfter: { 1: 6 },
    xattrs: 'omap',
  });
  demo.say(
    `sample: 2 FileStore OSDs in ${join(demo.directory, 'cluster')} (osd.1 stale), pool rbd`,
  );
  const hosts = join(demo.directory, 'hosts.txt');
  await writeFile(hosts, cluster.osds.map((path) => `local ${path}\n`).join(''));

  const bin = join(demo.root, 'apps', 'rbd-recover-cli', 'bin', 'rbd-recover.js');
  const cli = (args) => runCli(demo, bin, args);
  await cli(['database', '--hosts', hosts]);
  await cli(['list']);
  await cli(['lookup', 'rbd/vm-disk']);
  const [, ms] = await demo.timed(() =>
    cli(['recover', 'rbd/vm-disk', '--all-snapshots', '-o', join(demo.directory, 'vm-disk')]),
  );
  for (const [label, file] of [
    ['rbd/vm-disk', 'vm-disk.raw'],
    ['rbd/vm-disk@before-upgrade', 'vm-disk@before-upgrade.raw'],
    ['rbd/vm-disk@after-upgrade', 'vm-disk@after-upgrade.raw'],
  ]) {
    const rebuilt = await readFile(join(demo.directory, 'vm-disk', file));
    if (!rebuilt.equals(cluster.expected.get(label)))
      throw new Error(`${file} differs from ${label}`);
  }
  demo.say(
    `head and both snapshots identical to what the client wrote (${ms} ms), from the fresh replica`,
  );

  const qcow2 = join(demo.directory, 'vm-disk.qcow2');
  await cli(['recover', 'rbd/vm-disk', '--all-snapshots', '--format', 'qcow2', '-o', qcow2]);
  const image = await openQcow2(qcow2);
  try {
    const names = image.metadata.snapshots.map((snapshot) => snapshot.name);
    demo.say(
      `vm-disk.qcow2: internal snapshots ${names.join(', ')}; qemu-img snapshot -a <name> goes back`,
    );
  } finally {
    await image.close();
  }
}

function runCli(demo, bin, args) {
  demo.say(
    `$ rbd-recover ${args.map((arg) => arg.replaceAll(`${demo.directory}/`, '')).join(' ')}`,
  );
  return new Promise((resolve, reject) => {
    // The inventory goes to the working directory: the step's own.
    const options = { encoding: 'utf8', cwd: demo.directory };
    execFile(process.execPath, [bin, ...args], options, (error, stdout, stderr) => {
      const lines = `${stdout}${stderr}`.trimEnd().split('\n').filter(Boolean);
      for (const line of lines.slice(0, 14))
        demo.say(`    ${line.replaceAll(`${demo.directory}/`, '')}`);
      if (error) reject(new Error(`rbd-recover ${args[0]} failed (exit ${error.code})`));
      else resolve(stdout);
    });
  });
}
