// @x/e2image benchmarks against e2fsprogs' e2image (issue 4). Protocol and method:
// tools/bench/README.md. Whole processes: ours is the `x-e2image` bin of
// apps/e2image-cli, Node's start-up included.
//
// Input (made once, cached in .fixtures/ keyed by the recipe below; about 25 s):
// bench/make-tree.mjs writes a deterministic tree of 200,000 small files (two-level
// directories of 100 files, a 5,000-entry htree directory, symlinks, a sparse file
// with an extent index, a 64 MiB file; ~1.1 GB) and `mke2fs -q -t ext4 -d tree` makes
// an 8 GiB ext4 image of it (mke2fs defaults: 4 KiB blocks, 256-byte inodes,
// flex_bg, metadata_csum, 64bit); the tree is then deleted. `e2image -Q` of that
// image is the QCOW2 input of the conversion rows (e2image reads only QCOW2 files it
// wrote). --quick: a 512 MiB filesystem with 10,000 files.
//
// Cases (what is timed: one whole command; the output is deleted before every run):
// - raw:           x-e2image -r --no-sync fs.img out   vs  e2image -r fs.img out
// - qcow2:         x-e2image -Q --no-sync fs.img out   vs  e2image -Q fs.img out
// - qcow2-to-raw:  x-e2image -r --no-sync fs.qcow2 out vs  e2image -r fs.qcow2 out
//   e2image never fsyncs; ours is told not to either (like for like).
// - *-durable: the same with what x-e2image does by default (fsync before the
//   rename) against e2image followed by `sync out`.
// Targets (issue 4): wall time ratio <= 1.0, our peak RSS <= 200 MiB.
// - raw-64g, qcow2-64g (and -durable): the same -r and -Q at the scale users run
//   (issue 18): a 64 GiB ext4 made with `mke2fs -N 1000000` (1,000,448 inodes) from a
//   tree of 600,000 files in make-tree's `metadata` profile (mostly empty files: the
//   inodes, directories and extent trees are there, the image holds ~0.6 GB; made once
//   in a few minutes; --quick: 2 GiB, -N 100000, 50,000 files). Target: ratio <= 1.15,
//   same pairings.
// - startup: `x-e2image -V` against `node -e 0` (issue 18): at most 25 ms more.
//   Use --runs 15 or more.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCases } from '@x/bench';
import { cachedFixture } from '@x/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const bin = join(packageRoot, '..', '..', 'apps', 'e2image-cli', 'bin', 'x-e2image.js');

async function inputs(quick, large = false) {
  const [size, files, inodes] = large
    ? quick
      ? ['2G', 50_000, 100_000]
      : ['64G', 600_000, 1_000_000]
    : quick
      ? ['512M', 10_000]
      : ['8G', 200_000];
  const profile = large ? ['metadata'] : [];
  const inodeArgs = inodes ? ['-N', String(inodes)] : [];
  const recipe = `make-tree.mjs v1 ${files} files seed 1 ${profile.join(' ')}; mke2fs -q -t ext4 ${inodeArgs.join(' ')} -d tree ${size}; e2image -Q`;
  const directory = await cachedFixture(packageRoot, `bench-ext4-${size}`, recipe, async (dir) => {
    const tree = join(dir, 'tree');
    execFileSync(process.execPath, [
      join(here, 'make-tree.mjs'),
      tree,
      String(files),
      '1',
      ...profile,
    ]);
    execFileSync(
      'mke2fs',
      ['-q', '-t', 'ext4', ...inodeArgs, '-d', tree, '-F', join(dir, 'fs.img'), size],
      { stdio: 'ignore' },
    );
    rmSync(tree, { recursive: true, force: true });
    execFileSync('e2image', ['-Q', join(dir, 'fs.img'), join(dir, 'fs.qcow2')], {
      stdio: 'ignore',
    });
  });
  return {
    image: join(directory, 'fs.img'),
    qcow2: join(directory, 'fs.qcow2'),
    label: `${size}B ext4, ${files.toLocaleString('en')} files${inodes ? `, -N ${inodes.toLocaleString('en')}` : ''}`,
  };
}

function outputPath(name) {
  const directory = join(packageRoot, '.fixtures', 'bench-output');
  mkdirSync(directory, { recursive: true });
  return join(directory, name);
}

const MODES = {
  raw: { flag: '-r', source: 'image', what: '-r' },
  qcow2: { flag: '-Q', source: 'image', what: '-Q' },
  'qcow2-to-raw': { flag: '-r', source: 'qcow2', what: '-r image.qcow2' },
};

async function imageCase(settings, mode, durable, large = false) {
  const input = await inputs(settings.quick, large);
  const { flag, source, what } = MODES[mode];
  const from = input[source];
  const ours = outputPath(`ours-${mode}`);
  const peer = outputPath(`e2image-${mode}`);
  return {
    pkg: '@x/e2image',
    ours: {
      name: `x-e2image ${what}${durable ? '' : ' --no-sync'} (${input.label})`,
      argv: [
        process.execPath,
        bin,
        flag,
        '--progress',
        'never',
        ...(durable ? [] : ['--no-sync']),
        from,
        ours,
      ],
      outputs: [ours],
    },
    peers: [
      {
        name: `e2image ${what}${durable ? ' && sync' : ''}`,
        argv: durable
          ? ['sh', '-c', 'e2image "$1" "$2" "$3" 2>/dev/null && sync "$3"', 'sh', flag, from, peer]
          : ['e2image', flag, from, peer],
        outputs: [peer],
      },
    ],
    target: large ? { ratio: 1.15 } : { ratio: 1.0, peakRssKiB: 200 * 1024 },
  };
}

// -V is the version flag every CLI gets (issue 14); until it exists here, --help loads the
// same code before any command (commander and the option table) and stands in for it.
function versionFlag() {
  try {
    execFileSync(process.execPath, [bin, '-V'], { stdio: 'ignore' });
    return '-V';
  } catch {
    return '--help';
  }
}

const startupCase = {
  name: 'startup',
  prepare: async () => ({
    pkg: '@x/e2image',
    ours: { name: `x-e2image ${versionFlag()}`, argv: [process.execPath, bin, versionFlag()] },
    peers: [{ name: 'node -e 0', argv: [process.execPath, '-e', '0'] }],
    target: { extraMs: 25 },
  }),
};

await runCases([
  ...Object.keys(MODES).flatMap((mode) => [
    { name: mode, prepare: (settings) => imageCase(settings, mode, false) },
    { name: `${mode}-durable`, prepare: (settings) => imageCase(settings, mode, true) },
  ]),
  ...['raw', 'qcow2'].flatMap((mode) => [
    { name: `${mode}-64g`, prepare: (settings) => imageCase(settings, mode, false, true) },
    {
      name: `${mode}-64g-durable`,
      prepare: (settings) => imageCase(settings, mode, true, true),
    },
  ]),
  startupCase,
]);
