#!/usr/bin/env node
// `pnpm bench`: builds, runs every package's bench/bench.mjs (ours against the real
// peer, same run), prints a table and writes bench/results.json. See README.md.
//
//   pnpm bench [--quick] [--runs N] [--package blockio,qcow2] [--case sparse-copy]
//              [--drop-caches] [--strict]
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UNSET_FOR_CONTENDERS } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    runs: { type: 'string', default: process.env.BENCH_RUNS },
    package: { type: 'string', multiple: true, default: [] },
    case: { type: 'string', multiple: true, default: [] },
    'drop-caches': { type: 'boolean', default: process.env.BENCH_DROP_CACHES === '1' },
    strict: { type: 'boolean', default: false },
  },
});
const splitList = (list) => list.flatMap((item) => item.split(',')).filter(Boolean);
const packages = splitList([...flags.package, ...(process.env.BENCH_PACKAGES ?? '').split(',')]);
const cases = splitList([...flags.case, ...(process.env.BENCH_CASES ?? '').split(',')]);

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
function mustRun(command, args, what) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error(`bench: ${what} failed`);
    process.exit(1);
  }
}

mustRun('bash', [join(root, 'tools', 'peers', 'setup'), '--quiet'], 'installing the peers');
mustRun(
  join(root, 'node_modules', '.bin', 'turbo'),
  ['run', 'build', '--output-logs=errors-only'],
  'build',
);

/** Every workspace package with a bench/bench.mjs, optionally narrowed by --package. */
function discover() {
  const entries = [];
  for (const group of ['packages', 'apps']) {
    const directory = join(root, group);
    if (!existsSync(directory)) continue;
    for (const name of readdirSync(directory).sort()) {
      const entry = join(directory, name, 'bench', 'bench.mjs');
      if (!existsSync(entry)) continue;
      const manifest = JSON.parse(readFileSync(join(directory, name, 'package.json'), 'utf8'));
      if (packages.length > 0 && !packages.includes(name) && !packages.includes(manifest.name)) {
        continue;
      }
      entries.push({ name: manifest.name, directory: join(directory, name), entry });
    }
  }
  return entries;
}

const resultsDirectory = join(root, 'bench');
mkdirSync(resultsDirectory, { recursive: true });
const rowsFile = join(mkdtempSync(join(tmpdir(), 'blockkit-bench-')), 'rows.jsonl');

const entries = discover();
if (entries.length === 0) {
  console.error('bench: no bench/bench.mjs matched');
  process.exit(1);
}
const failures = [];
for (const { name, directory, entry } of entries) {
  console.error(`bench: ${name} (${relative(root, entry)})`);
  const result = spawnSync(process.execPath, [entry], {
    cwd: directory,
    stdio: 'inherit',
    env: {
      ...env,
      BENCH_RESULTS: rowsFile,
      BENCH_QUICK: flags.quick ? '1' : '0',
      BENCH_CASES: cases.join(','),
      BENCH_DROP_CACHES: flags['drop-caches'] ? '1' : '0',
      ...(flags.runs ? { BENCH_RUNS: flags.runs } : {}),
    },
  });
  if (result.status !== 0) failures.push(name);
}

const rows = existsSync(rowsFile)
  ? readFileSync(rowsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
  : [];
rmSync(dirname(rowsFile), { recursive: true, force: true });

printTable(rows);
const results = {
  date: new Date().toISOString(),
  machine: machineFacts(),
  settings: {
    quick: flags.quick,
    runs: flags.runs ? Number(flags.runs) : flags.quick ? 3 : 5,
    dropCaches: flags['drop-caches'],
    // Removed from every timed process's environment (lib.mjs says why).
    unsetEnv: UNSET_FOR_CONTENDERS,
  },
  rows,
};
writeFileSync(join(resultsDirectory, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
console.error(`bench: wrote ${relative(root, join(resultsDirectory, 'results.json'))}`);

const missed = rows.filter((row) => row.met === false);
if (failures.length > 0) console.error(`bench: failed: ${failures.join(', ')}`);
if (missed.length > 0) console.error(`bench: ${missed.length} row(s) missed their target`);
process.exit(failures.length > 0 || (flags.strict && missed.length > 0) ? 1 : 0);

function printTable(list) {
  const header = [
    'package',
    'case',
    'ours ms',
    'ours RSS',
    'peer',
    'peer ms',
    'peer RSS',
    'ratio',
    'target',
  ];
  const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
  const body = list.map((row) => [
    row.package,
    row.case,
    String(row.ours.medianMs),
    mib(row.ours.peakRssKiB),
    row.peer.name,
    String(row.peer.medianMs),
    mib(row.peer.peakRssKiB),
    row.ratio.toFixed(2),
    row.target
      ? `${row.target.ratio ? `≤${row.target.ratio}×` : ''}${row.target.extraMs !== undefined ? `≤+${row.target.extraMs} ms` : ''}${row.target.peakRssKiB ? ` ≤${mib(row.target.peakRssKiB)}` : ''} ${row.met ? 'ok' : 'MISSED'}`
      : '',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => cells[column].length)),
  );
  const line = (cells) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const cells of body) console.log(line(cells));
}

function machineFacts() {
  const firstLine = (command, args) => {
    const result = spawnSync(command, args, { encoding: 'utf8' });
    return result.status === 0 ? result.stdout.split('\n')[0].trim() : undefined;
  };
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    filesystem: firstLine('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', root]),
    coreutils: firstLine('cp', ['--version']),
  };
}
