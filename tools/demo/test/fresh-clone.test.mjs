// The quick start runs `pnpm demo` on a fresh clone, where no package is built yet:
// run.mjs must build before it loads anything that imports a built package. Here the
// runner is copied into a scratch "clone" whose @x/blockio is linked (as `pnpm install`
// leaves it) but has no dist/ until the (fake) build step writes it.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';

const demo = join(dirname(fileURLToPath(import.meta.url)), '..');
const clone = mkdtempSync(join(tmpdir(), 'blockkit-demo-fresh-'));
afterAll(() => rmSync(clone, { recursive: true, force: true }));

test('pnpm demo builds before it imports a built package (fresh clone)', () => {
  const runner = join(clone, 'tools', 'demo');
  mkdirSync(join(runner, 'steps'), { recursive: true });
  for (const file of ['run.mjs', 'context.mjs']) copyFileSync(join(demo, file), join(runner, file));
  const blockio = join(runner, 'node_modules', '@x', 'blockio');
  mkdirSync(blockio, { recursive: true });
  writeFileSync(
    join(blockio, 'package.json'),
    JSON.stringify({ name: '@x/blockio', type: 'module', exports: './dist/index.js' }),
  );
  const bin = join(clone, 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'turbo'),
    `#!/bin/sh\nmkdir -p '${blockio}/dist' && printf '%s\\n' 'export const createProgressRenderer = () => ({}); export const formatSize = String;' > '${blockio}/dist/index.js'\n`,
  );
  chmodSync(join(bin, 'turbo'), 0o755);

  const run = spawnSync(process.execPath, [join(runner, 'run.mjs')], { encoding: 'utf8' });
  expect(run.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
  expect(run.stdout).toContain('demo: 0 step(s) done');
  expect(run.status).toBe(0);
});
