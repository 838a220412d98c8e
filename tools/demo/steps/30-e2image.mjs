// e2image: a small ext4 filesystem made by mke2fs, imaged with the x-e2image CLI as
// a sparse raw metadata image (-r) and as QCOW2 (-Q); then the filesystem is read
// straight from the QCOW2 file with @x/e2image, and the QCOW2 turned back into raw.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import {
  Filesystem,
  listDirectory,
  lookupPath,
  openSource,
  readFile as readFileIn,
  readSymlink,
} from '@x/e2image';

/** mke2fs lives in /sbin or /usr/sbin, which a normal user's PATH often lacks. */
function findProgram(name) {
  const directories = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ];
  for (const directory of directories) {
    if (directory && existsSync(join(directory, name))) return join(directory, name);
  }
  return undefined;
}

export default async function e2imageDemo(demo) {
  demo.heading('e2image: metadata images of an ext4 filesystem, raw and QCOW2');
  const mke2fs = findProgram('mke2fs');
  if (mke2fs === undefined) {
    // Not a failure of ours: the quick start runs the demo before `pnpm test` installs
    // the peers. Say so loudly, and let the run summary say so again.
    demo.say('SKIPPED: this step makes its sample filesystem with mke2fs, which is not installed.');
    demo.say('mke2fs comes with e2fsprogs: `sudo apt-get install e2fsprogs` (Debian, Ubuntu),');
    demo.say('`sudo dnf install e2fsprogs` (Fedora), or `bash tools/peers/setup` (every program');
    demo.say('the tests compare with; `pnpm test` runs it). Then: pnpm demo --step e2image');
    return { skipped: 'needs mke2fs from e2fsprogs' };
  }

  const bin = join(demo.root, 'apps', 'e2image-cli', 'bin', 'x-e2image.js');
  const tree = join(demo.directory, 'tree');
  const fsImage = join(demo.directory, 'fs.img');
  const raw = join(demo.directory, 'fs.raw');
  const qcow2 = join(demo.directory, 'fs.qcow2');
  const back = join(demo.directory, 'fs-from-qcow2.raw');
  const files = await makeTree(tree);
  const made = spawnSync(
    mke2fs,
    ['-q', '-F', '-t', 'ext4', '-L', 'demo', '-d', tree, fsImage, '32M'],
    {
      encoding: 'utf8',
    },
  );
  if (made.status !== 0) throw new Error(`mke2fs failed: ${made.stderr.trim()}`);
  demo.say(
    `sample: ${fsImage}, a 32 MiB ext4 filesystem made by ${mke2fs} with ${files} files, ` +
      `${demo.formatSize(await allocated(fsImage))} allocated`,
  );

  const e2image = (args) => runCli(demo, bin, args);
  await e2image(['-r', fsImage, raw]);
  demo.say(
    `fs.raw: ${demo.formatSize((await stat(raw)).size)} long, ${demo.formatSize(await allocated(raw))} allocated ` +
      '(metadata only: superblock, descriptors, bitmaps, inode tables, directories, extent blocks)',
  );
  const system = findProgram('e2image');
  if (system !== undefined) {
    const theirs = join(demo.directory, 'fs-e2fsprogs.raw');
    const run = spawnSync(system, ['-r', fsImage, theirs], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`e2image -r failed: ${run.stderr.trim()}`);
    const same = (await readFile(raw)).equals(await readFile(theirs));
    if (!same) throw new Error("fs.raw differs from e2fsprogs' e2image -r output");
    demo.say(`identical, byte for byte, to what ${system} -r writes`);
  }

  await e2image(['-Q', fsImage, qcow2]);
  demo.say(`fs.qcow2: ${demo.formatSize((await stat(qcow2)).size)}, no holes needed`);

  // The QCOW2 image is a BlockDevice: the filesystem reader works on it as on a disk.
  const source = await openSource(qcow2);
  try {
    const fs = await Filesystem.open(source.device);
    demo.say(
      `read from fs.qcow2 directly: ext4, ${fs.blocksCount} blocks of ${fs.blockSize} bytes, ` +
        `${fs.groupCount} group(s), ${fs.inodesCount} inodes`,
    );
    const root = await listDirectory(fs, 2);
    const names = root.map((entry) => entry.name).filter((name) => !name.startsWith('.'));
    demo.say(`  / holds: ${names.join(', ')}`);
    const src = await listDirectory(fs, await lookupPath(fs, '/src'));
    demo.say(
      `  /src holds ${src.length - 2} entries (${src
        .slice(2, 5)
        .map((e) => e.name)
        .join(', ')}, …)`,
    );
    demo.say(`  /link -> ${await readSymlink(fs, await lookupPath(fs, '/link'))}`);
    const readme = await readFileIn(fs, await lookupPath(fs, '/README'));
    if (readme.some((byte) => byte !== 0)) throw new Error('file contents leaked into the image');
    demo.say(
      `  /README: ${readme.length} bytes, all zeros here: file contents are not copied (-a would)`,
    );
  } finally {
    await source.close();
  }

  await e2image(['-r', qcow2, back]);
  if (!(await readFile(back)).equals(await readFile(raw))) {
    throw new Error('the raw image made from fs.qcow2 differs from fs.raw');
  }
  demo.say('fs-from-qcow2.raw is identical to fs.raw: the QCOW2 image holds the same metadata');
}

function runCli(demo, bin, args) {
  demo.say(
    `$ x-e2image ${args.map((arg) => (arg.includes('/') ? arg.split('/').at(-1) : arg)).join(' ')}`,
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      for (const line of `${stdout}${stderr}`.trimEnd().split('\n')) {
        if (line) demo.say(`    ${line.replaceAll(`${demo.directory}/`, '')}`);
      }
      if (error) reject(new Error(`x-e2image ${args.join(' ')} failed (exit ${error.code})`));
      else resolve();
    });
  });
}

/** A small tree: a README, a text file, 60 small sources, a symlink. Returns the file count. */
async function makeTree(root) {
  await mkdir(join(root, 'docs'), { recursive: true });
  await mkdir(join(root, 'src'), { recursive: true });
  await writeFile(join(root, 'README'), 'a sample filesystem for the blockkit demo\n');
  const numbers = Array.from({ length: 5000 }, (_, i) => `${i}\n`).join('');
  await writeFile(join(root, 'docs', 'numbers.txt'), numbers);
  for (let i = 0; i < 60; i++) {
    await writeFile(join(root, 'src', `module-${i}.c`), `int module_${i}(void) { return ${i}; }\n`);
  }
  await symlink('docs/numbers.txt', join(root, 'link'));
  return 63;
}

async function allocated(path) {
  return (await stat(path)).blocks * 512;
}
