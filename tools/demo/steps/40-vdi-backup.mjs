// vdi-backup: Sheepdog-style incremental backups between snapshots of raw images (no
// qemu-img or Sheepdog cluster needed): three "nightly snapshots" of a sparse 512 MiB
// disk, two backup streams, a merge, inspect, verify, and restores checked byte for byte.
import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MiB = 2 ** 20;
const SIZE = 512 * MiB;

export default async function vdiBackupDemo(demo) {
  const bin = join(demo.root, 'apps', 'vdi-backup-cli', 'bin', 'vdi-backup.js');
  const file = (name) => join(demo.directory, name);
  const run = (args, options) => runCli(demo, bin, args, options);
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 9));

  demo.heading('vdi-backup: incremental backups between snapshots (dog vdi backup streams)');
  // Each day's image is written from scratch (copying a file would not keep it sparse).
  const monday = [
    [0, keystream.update(Buffer.alloc(8 * MiB))],
    [100 * MiB, keystream.update(Buffer.alloc(8 * MiB))],
    [300 * MiB, keystream.update(Buffer.alloc(8 * MiB))],
  ];
  // Tuesday: a few small writes (a log line, a changed block, a new file).
  const tuesday = [
    ...monday,
    [13, Buffer.from('tuesday')],
    [100 * MiB + 40960, keystream.update(Buffer.alloc(4096))],
    [200 * MiB, keystream.update(Buffer.alloc(MiB))],
  ];
  // Wednesday: more of the same.
  const wednesday = [
    ...tuesday,
    [100 * MiB + 40960, keystream.update(Buffer.alloc(8192))],
    [SIZE - 512, Buffer.alloc(512, 0xee)],
  ];
  await writeAt(file('monday.raw'), SIZE, monday);
  await writeAt(file('tuesday.raw'), SIZE, tuesday);
  await writeAt(file('wednesday.raw'), SIZE, wednesday);
  demo.say(
    `made three "snapshots" of a sparse ${demo.formatSize(SIZE)} disk: monday.raw, tuesday.raw, wednesday.raw`,
  );

  await run([
    'create',
    '-F',
    file('monday.raw'),
    '-s',
    file('tuesday.raw'),
    '-o',
    file('mon-tue.backup'),
  ]);
  await run([
    'create',
    '-F',
    file('tuesday.raw'),
    '-s',
    file('wednesday.raw'),
    '-o',
    file('tue-wed.backup'),
  ]);
  await run(['inspect', file('mon-tue.backup')]);
  await run([
    'merge',
    file('mon-tue.backup'),
    file('tue-wed.backup'),
    '-o',
    file('mon-wed.backup'),
  ]);
  await run(['verify', file('mon-wed.backup'), '--size', String(SIZE)]);
  const [, ms] = await demo.timed(() =>
    run(['restore', '-s', file('monday.raw'), file('restored.raw'), '-i', file('mon-wed.backup')]),
  );
  if ((await sha256(file('restored.raw'))) !== (await sha256(file('wednesday.raw')))) {
    throw new Error('restored.raw differs from wednesday.raw');
  }
  const streamSize = (await stat(file('mon-wed.backup'))).size;
  demo.say(
    `monday.raw + one ${demo.formatSize(streamSize)} merged stream = wednesday.raw, byte for byte (restored in ${ms} ms)`,
  );

  // A damaged stream is refused before anything is written.
  const damaged = await readFile(file('mon-wed.backup'));
  await writeFile(file('cut.backup'), damaged.subarray(0, damaged.length - 100));
  await run(['restore', '-s', file('monday.raw'), file('never.raw'), '-i', file('cut.backup')], {
    expect: 1,
  });
  const left = await stat(file('never.raw')).catch(() => undefined);
  if (left) throw new Error('a refused restore left never.raw behind');
  demo.say('the cut stream was refused and no never.raw (or never.raw.partial) was created');
}

async function writeAt(path, size, writes) {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    for (const [offset, data] of writes) await handle.write(data, 0, data.length, offset);
  } finally {
    await handle.close();
  }
}

async function sha256(path) {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Runs the CLI bin, prints the command and (the first lines of) its output, checks the exit code. */
function runCli(demo, bin, args, { expect = 0, lines = 8 } = {}) {
  demo.say(
    `$ vdi-backup ${args.map((arg) => (arg.includes('/') ? arg.split('/').at(-1) : arg)).join(' ')}`,
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const output = `${stdout}${stderr}`
        .trimEnd()
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => line.replaceAll(`${demo.directory}/`, ''));
      for (const line of output.slice(0, lines)) demo.say(`    ${line}`);
      if (output.length > lines) demo.say(`    … (${output.length - lines} more lines)`);
      if (code !== expect) {
        reject(new Error(`vdi-backup ${args[0]} exited ${code}, expected ${expect}`));
        return;
      }
      if (expect !== 0) demo.say(`    (exit ${code}, as expected)`);
      resolve(stdout);
    });
  });
}
