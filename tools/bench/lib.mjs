// Shared benchmark helper: times whole processes (ours and the real peer, Node
// start-up included) under /usr/bin/time, interleaved, and reports median rows.
// The protocol is described in tools/bench/README.md.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TIME = '/usr/bin/time';

/**
 * Removed from the environment of every timed contender (a case's own `env` may still set
 * them). NODE_EXTRA_CA_CERTS makes every Node process read and parse a CA bundle at
 * start-up (about +40 ms and +2 MiB here); sandboxes and CI images set it, a user's shell
 * normally does not, and no contender opens a TLS connection. Recorded in results.json.
 */
export const UNSET_FOR_CONTENDERS = ['NODE_EXTRA_CA_CERTS'];

function contenderEnv(extra) {
  const env = { ...process.env };
  for (const name of UNSET_FOR_CONTENDERS) delete env[name];
  return { ...env, ...extra };
}

/** Settings the runner passes through the environment (all optional when run directly). */
export function benchSettings() {
  const quick = process.env.BENCH_QUICK === '1';
  const runs = Number(process.env.BENCH_RUNS ?? (quick ? 3 : 5));
  const cases = (process.env.BENCH_CASES ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  return { quick, runs: Number.isInteger(runs) && runs > 0 ? runs : 5, cases };
}

/**
 * Runs `argv` once under /usr/bin/time and returns its wall time (ms, measured here) and peak
 * resident set (KiB, of the process or its largest waited-for descendant).
 * A non-zero exit is an error: a benchmark of a failing command means nothing.
 */
export function timeProcess(argv, options = {}) {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: run \`pnpm peers\` (package "time")`);
  const scratch = mkdtempSync(join(tmpdir(), 'blockkit-time-'));
  const report = join(scratch, 'time.txt');
  try {
    const started = process.hrtime.bigint();
    const result = spawnSync(TIME, ['-f', '%e %M', '-o', report, '--', ...argv], {
      cwd: options.cwd,
      env: contenderEnv(options.env),
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 16 << 20,
    });
    if (result.error) throw result.error;
    if (result.status !== 0) {
      throw new Error(`${argv.join(' ')} exited ${result.status}: ${result.stderr.toString()}`);
    }
    // Wall time to the millisecond around the whole run (time's %e has 10 ms steps, too
    // coarse for start-up rows); /usr/bin/time's own ~1 ms is in every contender's.
    const wallMs = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    const [, kib] = readFileSync(report, 'utf8').trim().split('\n').at(-1).split(' ');
    return { wallMs, peakRssKiB: Number(kib) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : Math.round((sorted[middle - 1] + sorted[middle]) / 2);
}

/** Flushes dirty pages so one run's writeback does not land in the next run's time. */
export function settle(outputs = []) {
  for (const path of outputs) {
    rmSync(path, { force: true });
    rmSync(`${path}.partial`, { force: true });
  }
  spawnSync('sync', [], { stdio: 'ignore' });
  if (process.env.BENCH_DROP_CACHES === '1') {
    // Cold-cache mode (root only): every run then reads its input from the disk.
    spawnSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
  }
}

/**
 * Measures one case: `ours` and each of `peers` ({ name, argv, outputs, target? }) run
 * `runs` times, interleaved and in rotating order so drift in machine load hits
 * every contender alike, after one unmeasured warm-up each (which also brings the
 * input into the page cache for all of them). Outputs are deleted and `sync`ed
 * before every run. Returns one row per peer; a peer's own `target` (or null for
 * "for information") overrides the case's.
 */
export function measureCase({ pkg, name, ours, peers, runs, target = null, env }) {
  const contenders = [ours, ...peers];
  const samples = contenders.map(() => []);
  // Every contender's outputs go before every run, not only its own: an output left
  // in place would be written back by the next sync and hold a GiB of page cache
  // while the next contender allocates its own.
  const allOutputs = contenders.flatMap((contender) => contender.outputs ?? []);
  for (const contender of contenders) {
    settle(allOutputs);
    timeProcess(contender.argv, { env });
  }
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const index = (round + k) % contenders.length;
      const contender = contenders[index];
      settle(allOutputs);
      samples[index].push(timeProcess(contender.argv, { env }));
    }
  }
  settle(allOutputs);

  const summary = (contender, list) => ({
    name: contender.name,
    medianMs: median(list.map((sample) => sample.wallMs)),
    peakRssKiB: Math.max(...list.map((sample) => sample.peakRssKiB)),
    runsMs: list.map((sample) => sample.wallMs),
  });
  const oursSummary = summary(ours, samples[0]);
  return peers.map((peer, index) => {
    const peerSummary = summary(peer, samples[index + 1]);
    const ratio = Math.round((oursSummary.medianMs / peerSummary.medianMs) * 100) / 100;
    const goal = peer.target === undefined ? target : peer.target;
    const met =
      goal === null
        ? null
        : (goal.ratio === undefined || ratio <= goal.ratio) &&
          (goal.extraMs === undefined ||
            oursSummary.medianMs - peerSummary.medianMs <= goal.extraMs) &&
          (goal.peakRssKiB === undefined || oursSummary.peakRssKiB <= goal.peakRssKiB);
    return {
      package: pkg,
      case: name,
      ours: oursSummary,
      peer: peerSummary,
      ratio,
      target: goal,
      met,
    };
  });
}

/**
 * Hands rows to the runner (BENCH_RESULTS names a JSON-lines file), or prints them
 * when the bench entry is run on its own.
 */
export function reportRows(rows) {
  const file = process.env.BENCH_RESULTS;
  for (const row of rows) {
    if (file) appendFileSync(file, `${JSON.stringify(row)}\n`);
    else console.log(formatRow(row));
  }
}

export function formatRow(row) {
  const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
  const verdict = row.met === null ? '' : row.met ? '  ok' : '  MISSED';
  return (
    `${row.package} ${row.case}: ours ${row.ours.medianMs} ms ${mib(row.ours.peakRssKiB)}, ` +
    `${row.peer.name} ${row.peer.medianMs} ms ${mib(row.peer.peakRssKiB)}, ratio ${row.ratio}` +
    `${row.target?.ratio ? ` (target ≤ ${row.target.ratio})` : ''}` +
    `${row.target?.extraMs !== undefined ? ` (target ≤ +${row.target.extraMs} ms)` : ''}${verdict}`
  );
}

/** Runs a bench entry's cases, honouring BENCH_CASES, and reports their rows. */
export async function runCases(cases) {
  const settings = benchSettings();
  const selected = cases.filter(
    (benchCase) => settings.cases.length === 0 || settings.cases.includes(benchCase.name),
  );
  for (const benchCase of selected) {
    process.stderr.write(`bench: ${benchCase.name}: preparing\n`);
    const plan = await benchCase.prepare(settings);
    process.stderr.write(`bench: ${benchCase.name}: ${settings.runs} runs per contender\n`);
    reportRows(measureCase({ name: benchCase.name, runs: settings.runs, ...plan }));
  }
}
