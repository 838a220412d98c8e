import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const index = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');

// Every CLI imports @x/blockio when a command runs: builtins only some paths need
// (a filefrag run, worker threads) are loaded on first use, not by the import.
it('importing @x/blockio loads neither node:child_process nor node:worker_threads', () => {
  const probe = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `await import(${JSON.stringify(index)}); console.log(JSON.stringify(process.moduleLoadList));`,
    ],
    { encoding: 'utf8' },
  );
  expect(probe.stderr).toBe('');
  const loaded: string[] = JSON.parse(probe.stdout);
  expect(loaded.filter((name) => /\b(child_process|worker_threads)\b/.test(name))).toEqual([]);
});
