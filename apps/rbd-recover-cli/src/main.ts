import { Command } from 'commander';
import { registerDatabase } from './commands/database.js';
import { registerList } from './commands/list.js';
import { registerLookup } from './commands/lookup.js';
import { registerRecover } from './commands/recover.js';

const WORKFLOW = `
The workflow (as Ceph's rbd_recover_tool): stop every ceph-osd and flush its journal, then
  rbd-recover database --hosts osds.txt     # read every OSD once: inventory in ./rbd-recover-inventory/
  rbd-recover list                          # images of every pool and namespace
  rbd-recover lookup rbd/vm-disk            # size, order, prefix, snapshots
  rbd-recover recover rbd/vm-disk -o vm-disk.raw

Exit codes: 0 success, 1 failure (or a recovery with objects it could not read: see the
report), 2 usage error, 130/143 interrupted. See the README for every option.`;

// Each command module only declares its options here; the code that does the work
// is imported when the command runs, so start-up stays small.
const program = new Command('rbd-recover')
  .description(
    'Rebuild Ceph RBD images and their snapshots from the FileStore OSDs of a dead cluster, over SSH or from local disks.',
  )
  .version('0.1.0', '-V, --version')
  .addHelpText('after', WORKFLOW)
  // Parser errors are thrown, not printed: exitOnParserError prints them as one line
  // (and a JSON object with --json) and exits 2. Subcommands inherit both settings.
  .exitOverride()
  .configureOutput({ outputError: () => {} });

for (const register of [registerDatabase, registerList, registerLookup, registerRecover]) {
  register(program);
}

await program.parseAsync(process.argv).catch(async (error: unknown) => {
  // --help and --version: done. Exit now, before a reader that went away (`--help | head`)
  // turns the help text's EPIPE into an unhandled 'error' event while blockio loads.
  if ((error as { exitCode?: unknown }).exitCode === 0) process.exit(0);
  const { exitOnParserError } = await import('@x/blockio/cli');
  exitOnParserError('rbd-recover', error);
});
