#!/usr/bin/env node
// The "ours" side of the sparse-copy benchmark: what a CLI does for `copy in out`,
// as its own process (Node start-up included): open, copy sparsely into an atomic
// output file, commit. `--no-sync` skips the fsync, like cp and dd by default.
import { copy, FileDevice, withOutputFile } from '../dist/index.js';

const [from, to, ...flags] = process.argv.slice(2);
if (!from || !to) {
  console.error('usage: sparse-copy.mjs <source> <target> [--no-sync]');
  process.exit(2);
}
const source = await FileDevice.open(from);
try {
  await withOutputFile(to, { size: source.size, sync: !flags.includes('--no-sync') }, (output) =>
    copy(source, output.device),
  );
} finally {
  await source.close();
}
