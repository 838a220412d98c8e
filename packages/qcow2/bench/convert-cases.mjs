// qcow2 convert -O raw against qemu-img convert -O raw (issue 3 rows (a) and (b)).
// Protocol and method: tools/bench/README.md. Whole processes: ours is the `qcow2` bin.
//
// Input (formats doc §4b, made once with bench/mk_raw.py and cached in .fixtures/): a
// 4 GiB raw disk holding 1 GiB of scattered 4 MiB chunks (half random, half text), and
// its qemu-img conversions to qcow2 (64 KiB clusters) plain, deflate-compressed (`-c`)
// and zstd-compressed (`-c -o compression_type=zstd`). --quick: 1 GiB holding 256 MiB.
// The random half does not compress: qemu-img stores those clusters plain, so the
// compressed images hold 512 MiB of compressed text and 512 MiB of plain clusters.
//
// Cases:
// - convert-raw: nobody fsyncs (ours with --no-sync, qemu-img as it runs by default).
//   Target (issue 3): ratio <= 1.0.
// - convert-raw-durable: what `qcow2 convert` does by default (fsync before the rename)
//   against qemu-img convert followed by `sync <output>`. Same target.
// - convert-raw-deflate, convert-raw-zstd: the compressed images, nobody fsyncs. Target
//   (issue 18): ratio <= 0.6 and peak RSS <= 160 MiB: clusters inflate off the main
//   thread (zlib on libuv's pool, zstd on worker threads) while it reads and writes
//   (issue 3's old target for deflate was 1.5). On Node < 22.15 zstd is decoded by
//   libzstd in WebAssembly: a bare loop over the image's 8437 compressed clusters
//   (527 MiB out) takes 1.0-1.05 s of CPU on one thread, 1.28-1.35 s through the
//   InflatePool's 2 workers (start-up and messages included), against 0.49 s for the
//   zstd tool (libzstd 1.5.4) and ~6 s for fzstd, used before. With the decoder alone
//   needing >= 0.65 s of wall time on 2 cores and qemu-img's whole run 1.23 s on a quiet
//   machine, 0.6x (0.74 s) is out of reach on Node 20; Node 22.15+ decodes with
//   node:zlib's native zstd.
//   Measured 2026-12-07 while the machine was shared (run queue 25-50; interleaved,
//   medians of 3): deflate 6.9 s vs qemu-img 5.7-7.4 s; zstd 35 s vs 2.8-6.3 s (fzstd).
//   With libzstd in WebAssembly, interleaved at load 8-9: ours 4.3-7.5 s (1.4 s user
//   CPU, peak RSS 104 MiB) vs qemu-img 2.0-2.9 s (0.7 s user); fzstd 9.3-14.2 s (5.9 s
//   user) in the same minutes.
// - convert-raw-16g, convert-raw-16g-durable: a 16 GiB image holding 4 GiB of scattered
//   data (mk_raw.py 16 4096; --quick: 2 GiB holding 512 MiB), the copy at the scale
//   users run, where start-up no longer decides the ratio; --no-sync against qemu-img,
//   and the durable default against qemu-img && sync. Target (issue 18): ratio <= 1.05.
//   Where the time went (2026-12-07): both spend ~4 s of CPU, nearly all in the kernel
//   (perf: 51% copy_folio_from_iter_atomic = writes into the page cache, 15%
//   _copy_to_iter = reads), but ours ran on one thread, 17,169 awaited 256 KiB writes
//   after each read; at load 10-25 that thread waited 8-11 s for a CPU (schedstat)
//   while qemu-img's 8 coroutines on ~9 threads got their share. Now runs of 2 MiB are
//   read several at once on libuv's pool and written behind (blockio WriteBehind, 8 x 2
//   MiB): load 20-30, 9.2-9.6 s against 10.2-10.8 s (before 13-17 s against 9.8-11.4);
//   bench --runs 3 at load 28-30 (and the same job's tests running): 20.2 s against
//   11.3 s (1.79), then one pair by hand 24.5 s against 25.1 s. Not settled on this VM.
//   Durable: one pair at load 15-20 took 12.5 s (10.8 s copy, 1.2 s fsync) against
//   10.6 s (9.4 s + 1.2 s sync); the background fdatasync every 256 MiB costs CPU
//   (7-9.6 s against 6.2 s without it) and was not tuned for want of quiet minutes.
// - deflate after the same change, and zlib jobs limited to 2 on libuv's pool (so the
//   copy's reads and writes are not queued behind 64 of them): bench --runs 3 at load
//   30-39: 6.26 s against 7.00 s (0.89), peak RSS 100 MiB. Bare loop (inflate every
//   compressed cluster, 8,471 x 64 KiB, with node:zlib on the pool, no writes):
//   3.4-4.4 s against qemu-img's whole convert 5.8-6.5 s at load 15 (0.58-0.67), and
//   8.8-13.5 s against 6.3-9.7 s at load 30: inflate alone is at or above 0.6x
//   qemu-img here, so the 0.6 target is out of reach on this 2-core VM.
// - convert-qcow2: the plain image to a new qcow2 image (-O qcow2), nobody fsyncs (qemu-img
//   writes its target with cache=unsafe). Output bytes are identical. Info row, stated
//   target: ratio <= 1.0.
// - convert-qcow2-deflate: the same with -c (deflate every cluster). Info row, stated
//   target: ratio <= 1.5.
// - convert-qcow2-zstd: the same with -c -o compression_type=zstd (output bytes identical).
//   Info row, stated target: ratio <= 1.0 (libzstd in WebAssembly needs ~1.5x the CPU of
//   qemu-img's libzstd per cluster, on two workers where qemu-img compresses on one).
// Measured 2026-12-05 (pnpm bench --runs 7, quiet machine): convert-raw 1.26-1.43
// (ours 0.39-0.43 s, qemu-img 0.28-0.34 s; a bare readSync/writeSync loop in Node over
// the same extents takes 0.27-0.35 s), durable 0.90-0.94, deflate 0.97-1.00,
// convert-qcow2 1.04, convert-qcow2-deflate 1.42 (pako needs ~3.5x zlib's CPU per
// cluster; our deflate workers use both cores, qemu-img deflates on one). Runs on this
// VM now and then take 1.5-3x their usual time for any contender: read runsMs.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedFixture } from '@x/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const bin = join(packageRoot, '..', '..', 'apps', 'qcow2-cli', 'bin', 'qcow2.js');

async function inputs(quick) {
  const [sizeGiB, dataMiB] = quick ? [1, 256] : [4, 1024];
  const directory = await cachedFixture(
    packageRoot,
    `bench-convert-${sizeGiB}g`,
    `mk_raw.py ${sizeGiB} ${dataMiB} 7; qemu-img convert -O qcow2 [-c] [-c zstd]`,
    async (dir) => {
      const raw = join(dir, 'input.raw');
      execFileSync('python3', [
        join(here, 'mk_raw.py'),
        raw,
        String(sizeGiB),
        String(dataMiB),
        '7',
      ]);
      execFileSync('qemu-img', ['convert', '-O', 'qcow2', raw, join(dir, 'plain.qcow2')]);
      execFileSync('qemu-img', ['convert', '-c', '-O', 'qcow2', raw, join(dir, 'deflate.qcow2')]);
      execFileSync('qemu-img', [
        ...['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd'],
        ...[raw, join(dir, 'zstd.qcow2')],
      ]);
      execFileSync('rm', [raw]);
    },
  );
  const label = `${sizeGiB} GiB, ${dataMiB} MiB data`;
  return {
    plain: join(directory, 'plain.qcow2'),
    deflate: join(directory, 'deflate.qcow2'),
    zstd: join(directory, 'zstd.qcow2'),
    label,
  };
}

/** The copy at scale: 16 GiB holding 4 GiB of scattered data, plain qcow2 only. */
async function largeInput(quick) {
  const [sizeGiB, dataMiB] = quick ? [2, 512] : [16, 4096];
  const directory = await cachedFixture(
    packageRoot,
    `bench-convert-${sizeGiB}g-large`,
    `mk_raw.py ${sizeGiB} ${dataMiB} 11; qemu-img convert -O qcow2`,
    async (dir) => {
      const raw = join(dir, 'input.raw');
      execFileSync('python3', [
        join(here, 'mk_raw.py'),
        raw,
        String(sizeGiB),
        String(dataMiB),
        '11',
      ]);
      execFileSync('qemu-img', ['convert', '-O', 'qcow2', raw, join(dir, 'plain.qcow2')]);
      execFileSync('rm', [raw]);
    },
  );
  return {
    plain: join(directory, 'plain.qcow2'),
    label: `${sizeGiB} GiB, ${dataMiB / 1024} GiB data`,
  };
}

function outputs() {
  const directory = join(packageRoot, '.fixtures', 'bench-output');
  mkdirSync(directory, { recursive: true });
  return (name) => join(directory, name);
}

async function convertCase(settings, { compressed, durable, large }) {
  const input = large ? await largeInput(settings.quick) : await inputs(settings.quick);
  const source = compressed ? input[compressed] : input.plain;
  const out = outputs();
  const ours = out('ours.raw');
  const peer = out('qemu.raw');
  const what = `${compressed ? `${compressed} qcow2` : 'qcow2'} (${input.label})`;
  return {
    pkg: '@x/qcow2',
    ours: {
      name: `qcow2 convert -O raw${durable ? '' : ' --no-sync'} ${what}`,
      argv: [
        process.execPath,
        bin,
        'convert',
        '--progress',
        'never',
        ...(durable ? [] : ['--no-sync']),
        source,
        ours,
      ],
      outputs: [ours],
    },
    peers: [
      {
        name: durable ? 'qemu-img convert -O raw && sync' : 'qemu-img convert -O raw',
        argv: durable
          ? ['sh', '-c', 'qemu-img convert -O raw "$1" "$2" && sync "$2"', 'sh', source, peer]
          : ['qemu-img', 'convert', '-O', 'raw', source, peer],
        outputs: [peer],
      },
    ],
    target: compressed ? { ratio: 0.6, peakRssKiB: 160 * 1024 } : { ratio: large ? 1.05 : 1.0 },
  };
}

async function convertToQcow2Case(settings, { compressed, zstd = false }) {
  const input = await inputs(settings.quick);
  const out = outputs();
  const ours = out('ours.qcow2');
  const peer = out('qemu.qcow2');
  const flag = compressed ? ['-c', ...(zstd ? ['-o', 'compression_type=zstd'] : [])] : [];
  const what = `-O qcow2 ${flag.join(' ')} of qcow2 (${input.label})`.replace('  ', ' ');
  return {
    pkg: '@x/qcow2',
    ours: {
      name: `qcow2 convert ${what} --no-sync`,
      argv: [
        process.execPath,
        bin,
        'convert',
        '--progress',
        'never',
        '--no-sync',
        '-O',
        'qcow2',
        ...flag,
        input.plain,
        ours,
      ],
      outputs: [ours],
    },
    peers: [
      {
        name: `qemu-img convert ${what}`,
        argv: ['qemu-img', 'convert', '-O', 'qcow2', ...flag, input.plain, peer],
        outputs: [peer],
      },
    ],
    target: { ratio: compressed && !zstd ? 1.5 : 1.0 },
  };
}

/**
 * The decode-only bound of a compressed convert (bench/bare-decode.mjs: every compressed
 * cluster decoded on the pool's worker count, nothing written) against the whole
 * `qemu-img convert -O raw`. Information (no target): when this ratio is above
 * convert-raw-*'s target, no pipeline around our decoders can meet it on these cores.
 */
async function decodeBoundCase(settings, compressed) {
  const input = await inputs(settings.quick);
  const out = outputs();
  const peer = out('qemu.raw');
  const type = compressed === 'deflate' ? 'zlib' : 'zstd';
  return {
    pkg: '@x/qcow2',
    ours: {
      name: `decode ${compressed} clusters only (bare loop, ${input.label})`,
      argv: [process.execPath, join(here, 'bare-decode.mjs'), type, input[compressed]],
    },
    peers: [
      {
        name: 'qemu-img convert -O raw',
        argv: ['qemu-img', 'convert', '-O', 'raw', input[compressed], peer],
        outputs: [peer],
      },
    ],
    target: null,
  };
}

export const convertCases = [
  { name: 'convert-raw', prepare: (s) => convertCase(s, { compressed: false, durable: false }) },
  {
    name: 'convert-raw-durable',
    prepare: (s) => convertCase(s, { compressed: false, durable: true }),
  },
  {
    name: 'convert-raw-deflate',
    prepare: (s) => convertCase(s, { compressed: 'deflate', durable: false }),
  },
  {
    name: 'convert-raw-zstd',
    prepare: (s) => convertCase(s, { compressed: 'zstd', durable: false }),
  },
  { name: 'decode-bound-deflate', prepare: (s) => decodeBoundCase(s, 'deflate') },
  { name: 'decode-bound-zstd', prepare: (s) => decodeBoundCase(s, 'zstd') },
  {
    name: 'convert-raw-16g',
    prepare: (s) => convertCase(s, { durable: false, large: true }),
  },
  {
    name: 'convert-raw-16g-durable',
    prepare: (s) => convertCase(s, { durable: true, large: true }),
  },
  { name: 'convert-qcow2', prepare: (s) => convertToQcow2Case(s, { compressed: false }) },
  { name: 'convert-qcow2-deflate', prepare: (s) => convertToQcow2Case(s, { compressed: true }) },
  {
    name: 'convert-qcow2-zstd',
    prepare: (s) => convertToQcow2Case(s, { compressed: true, zstd: true }),
  },
];
