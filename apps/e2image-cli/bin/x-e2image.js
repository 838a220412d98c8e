#!/usr/bin/env node
// CommonJS (see package.json here): Node starts a CommonJS entry without its ES module
// loader, so `--version` costs ~1.5 ms over `node -e 0`, against ~15 ms as an ES module
// and ~25 ms through the bundle (commander and the option table).
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // A reader that went away (`qcow2 -V | true`) has what it wanted: end quietly.
  process.stdout.on('error', () => process.exit(0));
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  // The compile cache (Node >= 22.1; absent on 20) spares re-compiling the bundle on
  // every run. It never throws: a cache directory that cannot be written leaves it off.
  require('node:module').enableCompileCache?.();
  import('../dist/bundle/main.js');
}
