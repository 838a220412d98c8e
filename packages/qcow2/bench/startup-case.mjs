// Start-up (issue 18): `qcow2 --version` against `node -e 0`, whole processes: what the
// CLI costs before its first command runs, over Node's own start. Target: at most 25 ms
// more (median). Protocol and method: tools/bench/README.md. Use --runs 15 or more: the
// difference is a few tens of milliseconds on a noisy machine.
// Measured 2026-12-07 (perf stat -r 30, task-clock): node -e 0 21-24 ms, qcow2 --version
// 24-30 ms (the bin answers it itself, as CommonJS, before the bundle; it was 33 ms
// through the bundle, +27 ms wall). Before its first command runs, the CLI loads the
// bin (724 B), package.json and the bundle's main.js (169 KB: commander and the option
// tables of 13 commands); `info` then loads 14 chunks (206 KB) when its action runs.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, '..', '..', '..', 'apps', 'qcow2-cli', 'bin', 'qcow2.js');

export const startupCases = [
  {
    name: 'startup',
    prepare: async () => ({
      pkg: '@x/qcow2',
      ours: { name: 'qcow2 --version', argv: [process.execPath, bin, '--version'] },
      peers: [{ name: 'node -e 0', argv: [process.execPath, '-e', '0'] }],
      target: { extraMs: 25 },
    }),
  },
];
