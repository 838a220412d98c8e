#!/usr/bin/env node
// blockkit-bundle: run by a CLI app's `build` script after `tsc`, in the app's directory.
// Bundles dist/main.js (tsc's output: tsc stays the compiler of record) into a code-split
// ESM bundle in dist/bundle/, which the app's bin imports. Why: loading ~60-80 separate
// modules from dist/ of our packages costs 40-80 ms of CPU and ~10 MiB RSS at every start,
// against jobs of 0.2-0.6 s for qemu-img/e2image; one file per lazy step costs far less.
//
// Every dynamic import() stays a separate chunk, and the build fails when anything but the
// app's own files and the allowed packages (default: commander) would load before a
// command runs: the lazy-loading discipline of the apps is checked here, not hoped for.
//
// --external keeps a package out of the bundle, loaded from node_modules at run time: for a
// package the code also resolves by path (@x/qcow2's deflate workers require('pako') from
// their own thread, so the bundled pako and theirs must be one and the same package).
// The app must then list it in its own dependencies.
//
//   blockkit-bundle [--entry dist/main.js] [--outdir dist/bundle] [--eager commander,...]
//                   [--external pako,...]
import { rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const { values } = parseArgs({
  options: {
    entry: { type: 'string', default: 'dist/main.js' },
    outdir: { type: 'string', default: 'dist/bundle' },
    eager: { type: 'string', default: 'commander' },
    external: { type: 'string', default: '' },
  },
});
const appRoot = process.cwd();
const outdir = resolve(appRoot, values.outdir);
const eagerPackages = values.eager.split(',').filter(Boolean);
const externalPackages = values.external.split(',').filter(Boolean);

rmSync(outdir, { recursive: true, force: true }); // no stale chunks from an earlier build
const result = await build({
  entryPoints: { main: resolve(appRoot, values.entry) },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: 'chunks/[name]-[hash]',
  external: externalPackages,
  // commander is CommonJS: esbuild's require() shim needs a real require in ESM output.
  banner: {
    js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
  },
  // Not minified: stack traces in bug reports stay readable; parsing, not size, is the cost.
  metafile: true,
  absWorkingDir: appRoot,
  logLevel: 'warning',
});

const { outputs } = result.metafile;
// Dynamic import() targets are entry points too; ours is the one built from --entry.
const entryInput = relative(appRoot, resolve(appRoot, values.entry)).split(sep).join('/');
const entryOutput = Object.keys(outputs).find((path) => outputs[path].entryPoint === entryInput);
const eager = staticClosure(entryOutput);
const eagerInputs = [...eager].flatMap((path) => Object.keys(outputs[path].inputs));
const eagerExternals = [...eager].flatMap((path) =>
  outputs[path].imports
    .filter(({ external, kind }) => external && kind === 'import-statement')
    .map(({ path: specifier }) => specifier),
);
const intruders = [
  ...eagerInputs.filter((input) => !isAllowedEager(input)),
  ...eagerExternals.filter(
    (specifier) =>
      !isBuiltin(specifier) && !eagerPackages.includes(packageNameOf(`node_modules/${specifier}`)),
  ),
];
if (intruders.length > 0) {
  console.error(
    `blockkit-bundle: these modules would load before any command runs; import them lazily ` +
      `(await import()) in the command's action:\n  ${intruders.join('\n  ')}`,
  );
  process.exit(1);
}
const kib = (bytes) => `${Math.round(bytes / 1024)} KiB`;
const eagerBytes = [...eager].reduce((sum, path) => sum + outputs[path].bytes, 0);
const totalBytes = Object.values(outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(
  `blockkit-bundle: ${relative(appRoot, outdir)}: ${Object.keys(outputs).length} files, ` +
    `${kib(totalBytes)}; loaded at start-up: ${eager.size} files, ${kib(eagerBytes)}`,
);

/** Outputs loaded by static imports from `start` (dynamic imports are the lazy edges). */
function staticClosure(start) {
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length > 0) {
    const output = outputs[queue.pop()];
    for (const { path, kind, external } of output.imports) {
      if (external || kind !== 'import-statement' || seen.has(path)) continue;
      seen.add(path);
      queue.push(path);
    }
  }
  return seen;
}

/** The app's own modules, and modules of the packages allowed to load eagerly. */
function isAllowedEager(input) {
  const name = packageNameOf(input);
  if (name !== undefined) return eagerPackages.includes(name);
  // Workspace packages resolve to their real path (../../packages/...), outside the app.
  return resolve(appRoot, input).startsWith(appRoot + sep);
}

/** The npm package an input belongs to, from its last node_modules segment. */
function packageNameOf(input) {
  const parts = input.split(/[\\/]/);
  const index = parts.lastIndexOf('node_modules');
  if (index < 0) return undefined;
  const first = parts[index + 1];
  return first?.startsWith('@') ? `${first}/${parts[index + 2]}` : first;
}
