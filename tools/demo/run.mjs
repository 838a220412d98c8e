#!/usr/bin/env node
// `pnpm demo`: builds what is missing, then runs every step in tools/demo/steps/ in
// name order (NN-<tool>.mjs) against a scratch directory, and says what happened.
// Each tool adds itself by dropping in a step: see tools/demo/README.md.
//
//   pnpm demo [--keep] [--step blockio]
// Works without a TTY (progress then comes as plain lines) and as root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values: flags } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    step: { type: 'string', multiple: true, default: [] },
  },
});

const build = spawnSync(
  join(root, 'node_modules', '.bin', 'turbo'),
  ['run', 'build', '--output-logs=errors-only'],
  {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  },
);
if (build.status !== 0) {
  console.error('demo: the build failed (run `pnpm install` first?)');
  process.exit(1);
}
// Loaded only now: the context (and every step) imports the built packages, which a
// fresh clone does not have until the build above has run (a static import would fail
// with ERR_MODULE_NOT_FOUND before the build could start).
const { createDemoContext } = await import('./context.mjs');

const steps = readdirSync(join(here, 'steps'))
  .filter((name) => /^\d+-.+\.mjs$/.test(name))
  .sort()
  .filter((name) => flags.step.length === 0 || flags.step.some((wanted) => name.includes(wanted)));

const scratch = join(root, 'demo-output');
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });

let failed = false;
/** Steps that could not run here (a program they need is missing), with why. */
const skipped = [];
for (const name of steps) {
  const directory = join(scratch, name.replace(/\.mjs$/, ''));
  mkdirSync(directory, { recursive: true });
  const context = createDemoContext({ root, directory, title: name });
  try {
    const { default: step } = await import(pathToFileURL(join(here, 'steps', name)).href);
    const outcome = await step(context);
    if (outcome?.skipped) skipped.push(`${name.replace(/^\d+-|\.mjs$/g, '')} (${outcome.skipped})`);
  } catch (error) {
    failed = true;
    context.fail(error);
  } finally {
    context.close();
  }
}

if (!flags.keep) rmSync(scratch, { recursive: true, force: true });
else if (existsSync(scratch))
  console.log(`\nFiles kept in ${relative(process.cwd(), scratch) || '.'}`);
const skippedNote = skipped.length > 0 ? `; skipped: ${skipped.join(', ')}` : '';
console.log(
  failed
    ? `\ndemo: a step failed${skippedNote}`
    : `\ndemo: ${steps.length - skipped.length} step(s) done${skippedNote}`,
);
process.exit(failed ? 1 : 0);
