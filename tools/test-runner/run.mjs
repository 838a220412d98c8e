#!/usr/bin/env node
// `pnpm test`: installs what is missing (node modules, the Debian peers), builds,
// runs every vitest project, and ends with the line `N passed, N failed[, N skipped]`.
// Plain Node with no dependencies, so it can run before `pnpm install`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const passThrough = process.argv.slice(2);

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };

/** Runs a step; returns false (after saying why) when it fails. */
function step(command, args, what) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (result.error || result.status !== 0) {
    console.error(`test: ${what} failed (${result.error?.message ?? `exit ${result.status}`})`);
    return false;
  }
  return true;
}

/** A step nothing can run without: stop with the summary line. */
function run(command, args, what) {
  if (!step(command, args, what)) {
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

const pnpm =
  process.env.npm_execpath && /pnpm/.test(process.env.npm_execpath)
    ? [process.execPath, [process.env.npm_execpath]]
    : ['pnpm', []];
const pnpmRun = (args, what) => run(pnpm[0], [...pnpm[1], ...args], what);

if (!existsSync(join(root, 'node_modules', '.modules.yaml'))) {
  pnpmRun(['install', '--frozen-lockfile'], 'pnpm install');
}
// Without the peers the tests that need them fail (never skip): run them anyway, so
// the report says which, and count the failed setup as one more failure.
const peersReady = step('bash', [join(root, 'tools', 'peers', 'setup')], 'installing the peers');
pnpmRun(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], 'build');

const scratch = mkdtempSync(join(tmpdir(), 'blockkit-test-'));
const report = join(scratch, 'vitest.json');
const vitest = spawnSync(
  join(root, 'node_modules', '.bin', 'vitest'),
  ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...passThrough],
  { cwd: root, stdio: 'inherit', env: { ...env, BLOCKKIT_CI: process.env.CI ?? '' } },
);

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const summary = JSON.parse(readFileSync(report, 'utf8'));
  passed = summary.numPassedTests ?? 0;
  failed = summary.numFailedTests ?? 0;
  skipped = (summary.numPendingTests ?? 0) + (summary.numTodoTests ?? 0);
  // A test file that fails to load has no failed tests of its own; count it once.
  for (const file of summary.testResults ?? []) {
    const failures = (file.assertionResults ?? []).filter((test) => test.status === 'failed');
    if (file.status === 'failed' && failures.length === 0) failed++;
  }
} catch {
  failed = Math.max(failed, 1);
}
rmSync(scratch, { recursive: true, force: true });
if (vitest.status !== 0 && failed === 0) failed = 1;
if (!peersReady) failed++;
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
