#!/usr/bin/env node
// qcow2 read-side benchmark: `qcow2 convert -O raw` against `qemu-img convert -O raw` on the
// same input in the same run (formats doc §4b fixture: 4 GiB virtual, 1 GiB of scattered
// data), rows (a) plain qcow2 and (b) deflate-compressed qcow2. Runs alternate between the
// peer and us, each preceded by an untimed `sync` so neither pays for the other's writeback;
// the median wall time and max RSS of each side are reported with the ratio ours / peer.
// Our wall time includes Node start-up and the fsync our atomic output does before rename
// (qemu-img does not fsync). Outputs are compared byte for byte once per row.
//
// Usage: node bench/bench.mjs [--runs N] [--rows a,b] [--json]
// Fixtures (~3 GB) are cached in packages/qcow2/.fixtures/bench.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const repoRoot = join(packageRoot, '..', '..');
const cli = join(repoRoot, 'apps', 'qcow2-cli', 'bin', 'qcow2.js');
const fixtures = join(packageRoot, '.fixtures', 'bench');
const scratch = process.env.BLOCKKIT_BENCH_DIR ?? join(fixtures, 'out');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : fallback;
};
const runs = Number(option('--runs', '5'));
const rows = option('--rows', 'a,b').split(',');
const json = args.includes('--json');
const log = (line) => process.stderr.write(`${line}\n`);

function ensureFixtures() {
  mkdirSync(fixtures, { recursive: true });
  mkdirSync(scratch, { recursive: true });
  const raw = join(fixtures, 'raw4g.img');
  if (!existsSync(`${raw}.done`)) {
    log('bench: generating raw4g.img (4 GiB, 1 GiB scattered data; about a minute)…');
    execFileSync('python3', [join(here, 'mk_raw.py'), raw, '4', '1024', '7'], { stdio: 'inherit' });
    execFileSync('touch', [`${raw}.done`]);
  }
  const plain = join(fixtures, 'q.qcow2');
  if (!existsSync(`${plain}.done`)) {
    log('bench: qemu-img convert -O qcow2 …');
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', raw, plain]);
    execFileSync('touch', [`${plain}.done`]);
  }
  const zlib = join(fixtures, 'qz.qcow2');
  if (!existsSync(`${zlib}.done`)) {
    log('bench: qemu-img convert -c -O qcow2 (deflate; about a minute)…');
    execFileSync('qemu-img', ['convert', '-c', '-O', 'qcow2', raw, zlib]);
    execFileSync('touch', [`${zlib}.done`]);
  }
  return { a: plain, b: zlib };
}

const timeBin = ['/usr/bin/time'].find((path) => existsSync(path));

/** Runs a command, returning wall seconds and max RSS in KiB (when /usr/bin/time exists). */
function measure(command, commandArgs) {
  const report = join(scratch, 'time.txt');
  const started = process.hrtime.bigint();
  const result = timeBin
    ? spawnSync(timeBin, ['-o', report, '-f', '%e %M', command, ...commandArgs], {
        stdio: ['ignore', 'ignore', 'inherit'],
      })
    : spawnSync(command, commandArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0)
    throw new Error(`${command} ${commandArgs.join(' ')} exited ${result.status}`);
  let rss;
  if (timeBin) rss = Number(readFileSync(report, 'utf8').trim().split(/\s+/).at(-1));
  return { wall, rss };
}

const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
};

function clean(path) {
  rmSync(path, { force: true });
  rmSync(`${path}.partial`, { force: true });
}

const inputs = ensureFixtures();
const labels = { a: 'convert -O raw, 4 GiB / 1 GiB data', b: 'convert -O raw, deflate-compressed' };
const targets = { a: 1.0, b: 1.5 };
const results = [];
for (const row of rows) {
  const input = inputs[row];
  const peerOut = join(scratch, `peer-${row}.raw`);
  const oursOut = join(scratch, `ours-${row}.raw`);
  const peer = [];
  const ours = [];
  for (let run = 0; run < runs; run++) {
    for (const side of run % 2 === 0 ? ['peer', 'ours'] : ['ours', 'peer']) {
      const out = side === 'peer' ? peerOut : oursOut;
      clean(out);
      execFileSync('sync');
      if (side === 'peer') peer.push(measure('qemu-img', ['convert', '-O', 'raw', input, out]));
      else
        ours.push(measure(process.execPath, [cli, 'convert', '--progress', 'never', input, out]));
    }
  }
  const same =
    statSync(peerOut).size === statSync(oursOut).size &&
    spawnSync('cmp', ['-s', peerOut, oursOut]).status === 0;
  clean(peerOut);
  clean(oursOut);
  const peerWall = median(peer.map((m) => m.wall));
  const oursWall = median(ours.map((m) => m.wall));
  const durableWall = median(durable.map((m) => m.wall));
  const result = {
    row,
    what: labels[row],
    peer: 'qemu-img 7.2',
    peerSeconds: Number(peerWall.toFixed(3)),
    oursSeconds: Number(oursWall.toFixed(3)),
    ratio: Number((oursWall / peerWall).toFixed(2)),
    target: targets[row],
    peerDurableSeconds: Number(durableWall.toFixed(3)),
    ratioDurable: Number((oursWall / durableWall).toFixed(2)),
    peerRssKiB: timeBin ? median(peer.map((m) => m.rss)) : undefined,
    oursRssKiB: timeBin ? median(ours.map((m) => m.rss)) : undefined,
    runs,
    identical: same,
  };
  results.push(result);
  log(
    `(${row}) ${result.what}: qemu-img ${result.peerSeconds}s, ours ${result.oursSeconds}s, ` +
      `ratio ${result.ratio} (target <= ${result.target}); qemu-img + fsync ` +
      `${result.peerDurableSeconds}s, ratio ${result.ratioDurable}` +
      (timeBin ? `, RSS ${result.peerRssKiB} / ${result.oursRssKiB} KiB` : '') +
      `, output ${same ? 'identical' : 'DIFFERENT'}`,
  );
}
if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
if (results.some((result) => !result.identical)) process.exitCode = 1;
