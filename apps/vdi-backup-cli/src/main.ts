import { Command } from 'commander';
import { registerCreate } from './commands/create.js';
import { registerInspect } from './commands/inspect.js';
import { registerMerge } from './commands/merge.js';
import { registerRestore } from './commands/restore.js';
import { registerVerify } from './commands/verify.js';

// Each command module only declares its options here; the code that does the work is
// imported when the command runs, so start-up stays small.
const program = new Command('vdi-backup')
  .description(
    'Incremental backups between two snapshots of a disk, in the stream format of ' +
      "Sheepdog's `dog vdi backup` (byte-compatible with dog 1.0.1): for Sheepdog VDIs, " +
      'QCOW2 internal snapshots and pairs of raw images.',
  )
  .version('0.1.0', '-V, --version')
  // Parser errors are thrown, not printed: exitOnParserError prints them as one line
  // (and a JSON object with --json) and exits 2. Subcommands inherit both settings.
  .exitOverride()
  .configureOutput({ outputError: () => {} })
  .addHelpText(
    'after',
    `
Examples:
  vdi-backup create -F monday.raw -s tuesday.raw --object-size 4M -o mon-tue.backup
  vdi-backup create -F before-upgrade -s after-upgrade disk.qcow2 -o upgrade.backup
  vdi-backup create -F snap1 -s snap2 sheepdog://127.0.0.1:7000/alpha > snap1-2.backup
  vdi-backup restore -s monday.raw tuesday-restored.raw -i mon-tue.backup
  vdi-backup merge mon-tue.backup tue-wed.backup -o mon-wed.backup
  vdi-backup inspect mon-tue.backup
  vdi-backup verify mon-tue.backup --object-size 4M --size 64G

Exit codes: 0 success, 1 failure (bad stream, missing snapshot, I/O), 2 usage error,
130/143 interrupted (after cleanup), 141 the reader of standard output went away.`,
  );

for (const register of [
  registerCreate,
  registerRestore,
  registerMerge,
  registerInspect,
  registerVerify,
]) {
  register(program);
}

await program.parseAsync(process.argv).catch(async (error: unknown) => {
  // --help and --version: done. Exit now, before a reader that went away (`--help | head`)
  // turns the help text's EPIPE into an unhandled 'error' event while blockio loads.
  if ((error as { exitCode?: unknown }).exitCode === 0) process.exit(0);
  const { exitOnParserError } = await import('@x/blockio/cli');
  exitOnParserError('vdi-backup', error);
});
