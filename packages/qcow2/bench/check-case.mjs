// Row (c) of the qcow2 benchmarks: `qcow2 check` of a 1 TiB preallocation=metadata image
// (every L2 table present: 2048 L2 tables, 16,777,216 data clusters, 512 refcount blocks;
// 1 TiB apparent, ~170 MB allocated) against `qemu-img check` on the same file. Targets:
// wall ≤ 1.0× and peak RSS ≤ 1.0× qemu-img's, the RSS target being qemu-img's peak RSS
// measured on this machine just before (its in-memory refcount table is 32 MiB here).
//
// Three cases: `check-1t-metadata` times the CLI as users run it (Node start-up, commander and
// module loading included); `check-1t-metadata-library` (for information) a bare Node process
// that imports only @x/qcow2's diagnosis entry and calls checkImage — the floor under the CLI;
// `check-4t-metadata` (for information) the CLI on a 4 TiB image, where qemu-img's refcount
// array grows to 128 MiB while ours stays near Node's own ~40 MiB floor: at 1 TiB qemu-img's
// whole peak (40 MiB) is what an empty Node process takes, so the RSS target there measures
// Node's runtime more than the check.
// --quick uses a 64 GiB image.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { timeProcess } from '@x/bench';
import { cachedFixture, runPeerOk } from '@x/test-utils';

const packageRoot = join(import.meta.dirname, '..');
const cli = join(packageRoot, '..', '..', 'apps', 'qcow2-cli', 'bin', 'qcow2.js');

async function preallocatedImage(size) {
  const directory = await cachedFixture(
    packageRoot,
    `bench-check-${size}`,
    `prealloc-metadata-${size}`,
    (dir) =>
      runPeerOk('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-o',
        'preallocation=metadata',
        join(dir, 'image.qcow2'),
        size,
      ]),
  );
  return join(directory, 'image.qcow2');
}

function libraryRunner() {
  const path = join(packageRoot, '.fixtures', 'bench-check-library.mjs');
  writeFileSync(
    path,
    `import { checkImage } from ${JSON.stringify(join(packageRoot, 'dist', 'diagnosis.js'))};\n` +
      'process.exitCode = (await checkImage(process.argv[2])).exitCode;\n',
  );
  return path;
}

const peerCheck = (image) => ({
  name: 'qemu-img check',
  argv: ['qemu-img', 'check', image],
  outputs: [],
});

export const checkCases = [
  {
    name: 'check-1t-metadata',
    prepare: async ({ quick }) => {
      const image = await preallocatedImage(quick ? '64G' : '1T');
      timeProcess(['qemu-img', 'check', image]); // warm the page cache
      const peer = timeProcess(['qemu-img', 'check', image]);
      return {
        pkg: '@x/qcow2',
        ours: {
          name: 'qcow2 check',
          argv: [process.execPath, cli, 'check', '--progress', 'never', image],
          outputs: [],
        },
        peers: [peerCheck(image)],
        target: { ratio: 1.0, peakRssKiB: peer.peakRssKiB },
      };
    },
  },
  {
    name: 'check-1t-metadata-library',
    prepare: async ({ quick }) => {
      const image = await preallocatedImage(quick ? '64G' : '1T');
      return {
        pkg: '@x/qcow2',
        ours: {
          name: 'checkImage (bare process)',
          argv: [process.execPath, libraryRunner(), image],
          outputs: [],
        },
        peers: [{ ...peerCheck(image), target: null }],
      };
    },
  },
  {
    name: 'check-4t-metadata',
    prepare: async ({ quick }) => {
      const image = await preallocatedImage(quick ? '256G' : '4T');
      return {
        pkg: '@x/qcow2',
        ours: {
          name: 'qcow2 check',
          argv: [process.execPath, cli, 'check', '--progress', 'never', image],
          outputs: [],
        },
        peers: [{ ...peerCheck(image), target: null }],
      };
    },
  },
];
