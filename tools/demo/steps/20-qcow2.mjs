// qcow2: the `qcow2` CLI on an image our own library makes (no qemu-img needed):
// snapshot, info, map, check; a poked refcount that check finds and repair fixes;
// a broken active L1 table rolled back to the snapshot; convert to raw, verified;
// compare with the raw copy, grow and shrink back.
import { execFile } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createQcow2, openQcow2 } from '@x/qcow2';

const MiB = 2 ** 20;
const SIZE = 64 * MiB;
/** What the guest holds when the snapshot is taken: [offset, bytes]. */
const BEFORE_SNAPSHOT = [
  [0, 3 * MiB],
  [20 * MiB, MiB],
  [45 * MiB + 4096, 256 * 1024],
];

export default async function qcow2Demo(demo) {
  const bin = join(demo.root, 'apps', 'qcow2-cli', 'bin', 'qcow2.js');
  const image = join(demo.directory, 'disk.qcow2');
  const raw = join(demo.directory, 'disk.raw');
  const qcow2 = (args, options) => runCli(demo, bin, args, options);

  demo.heading(
    'qcow2: create, snapshot, inspect, damage, check, repair, roll back, convert, compare, resize',
  );
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), Buffer.alloc(16, 5));
  const written = [];
  await createQcow2(image, { size: SIZE });
  await writeGuest(image, async (disk) => {
    for (const [offset, length] of BEFORE_SNAPSHOT) {
      const data = keystream.update(Buffer.alloc(length));
      await disk.write(offset, data);
      written.push([offset, data]);
    }
  });
  demo.say(
    `made ${image} (${demo.formatSize(SIZE)} virtual) with @x/qcow2 and wrote ${demo.formatSize(4 * MiB + 256 * 1024)} of data`,
  );

  await qcow2(['snapshot', 'create', image, 'good']);
  await writeGuest(image, (disk) => disk.write(0, Buffer.alloc(MiB, 0xee)));
  demo.say('overwrote the first MiB after the snapshot (copy-on-write keeps the old data)');
  await qcow2(['snapshot', 'list', image]);
  await qcow2(['info', image], { lines: 5 });
  await qcow2(['map', image]);
  await qcow2(['check', image]);

  // A refcount of 0 on a cluster in use: the next allocation would hand it out again.
  const cluster = await firstDataCluster(image);
  const refcountAt = await refcountOffset(image, cluster);
  demo.say(`damage: zero the refcount of host cluster ${cluster} (a data cluster in use)`);
  await qcow2([
    'poke',
    image,
    '--offset',
    `0x${refcountAt.toString(16)}`,
    '--value',
    '0',
    '--width',
    '2',
    '--force',
  ]);
  await qcow2(['check', '--mode', 'error', image], { expect: 4, lines: 6 });
  await qcow2(['repair', image], { lines: 4 });
  await qcow2(['check', image], { lines: 2 });

  // Now break the active L1 table: qemu-img snapshot -a would give up half way.
  const l1 = Number((await readAt(image, 40, 8)).readBigUInt64BE(0));
  demo.say('damage: point the active L1 table entry 0 far past the end of the file');
  await qcow2([
    'poke',
    image,
    '--offset',
    `0x${l1.toString(16)}`,
    '--value',
    '0x8000000040000000',
    '--force',
  ]);
  await qcow2(['check', image], { expect: 6, lines: 2 });
  await qcow2(['snapshot', 'apply', image, 'good']);

  const [, ms] = await demo.timed(() => qcow2(['convert', '-O', 'raw', image, raw], { lines: 2 }));
  await verifyRaw(raw, written);
  demo.say(
    `converted in ${ms} ms to ${raw} (${demo.formatSize((await stat(raw)).blocks * 512)} allocated): ` +
      'identical, byte for byte, to the data as it was when the snapshot was taken',
  );

  // The questions after a recovery, as qemu-img users ask them.
  await qcow2(['compare', image, raw]);
  await qcow2(['resize', image, '+64M']);
  await qcow2(['compare', image, raw]);
  demo.say('the grown image still compares equal: past the raw file it holds only zeros');
  await qcow2(['resize', image, '-64M']);
  demo.say('and shrinks back without --shrink, since nothing but zeros would be dropped');
}

/** Runs the CLI bin, prints the command and (the first lines of) its output, checks the exit code. */
function runCli(demo, bin, args, { expect = 0, lines = 8 } = {}) {
  demo.say(
    `$ qcow2 ${args.map((arg) => (arg.includes('/') ? arg.split('/').at(-1) : arg)).join(' ')}`,
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const output = `${stdout}${stderr}`
        .trimEnd()
        .split('\n')
        .filter((line) => line.length > 0);
      for (const line of output.slice(0, lines)) demo.say(`    ${line}`);
      if (output.length > lines) demo.say(`    … (${output.length - lines} more lines)`);
      if (code !== expect) {
        reject(new Error(`qcow2 ${args[0]} exited ${code}, expected ${expect}`));
        return;
      }
      if (expect !== 0) demo.say(`    (exit ${code}, as expected)`);
      resolve(stdout);
    });
  });
}

async function writeGuest(path, write) {
  const disk = await openQcow2(path, { writable: true });
  try {
    await write(disk);
  } finally {
    await disk.close();
  }
}

async function readAt(path, offset, length) {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer;
  } finally {
    await handle.close();
  }
}

const OFFSET_MASK = 0x00fffffffffffe00n;

/** Host cluster of guest cluster 0, through the active L1 and L2 tables (64 KiB clusters). */
async function firstDataCluster(path) {
  const l1 = Number((await readAt(path, 40, 8)).readBigUInt64BE(0));
  const l2 = Number((await readAt(path, l1, 8)).readBigUInt64BE(0) & OFFSET_MASK);
  return Number((await readAt(path, l2, 8)).readBigUInt64BE(0) & OFFSET_MASK) / 65536;
}

/** Byte offset of a cluster's 16-bit refcount (in the first refcount block). */
async function refcountOffset(path, cluster) {
  const table = Number((await readAt(path, 48, 8)).readBigUInt64BE(0));
  const block = Number((await readAt(path, table, 8)).readBigUInt64BE(0));
  return block + 2 * cluster;
}

async function verifyRaw(path, written) {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size !== SIZE) throw new Error(`the raw image is ${size} bytes, not ${SIZE}`);
    const expected = Buffer.alloc(SIZE);
    for (const [offset, data] of written) data.copy(expected, offset);
    const chunk = Buffer.alloc(4 * MiB);
    for (let offset = 0; offset < SIZE; offset += chunk.length) {
      await handle.read(chunk, 0, chunk.length, offset);
      if (!chunk.equals(expected.subarray(offset, offset + chunk.length))) {
        throw new Error(`the raw image differs from the snapshot's data near offset ${offset}`);
      }
    }
  } finally {
    await handle.close();
  }
}
