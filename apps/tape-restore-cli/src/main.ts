import { Command } from 'commander';
import { registerMedia } from './commands/media.js';
import { registerRestore } from './commands/restore.js';
import { registerVerifyMedia } from './commands/verify-media.js';

// Each command module only declares its options here; the code that does the work is
// imported when the command runs, so start-up stays small.
const program = new Command('tape-restore')
  .description(
    'Restore snapshots from Proxmox Backup Server tapes (a PBS virtual tape drive directory ' +
      'or dd dumps of tapes), plan a restore before fetching cartridges, verify media.',
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
  tape-restore media list --status-dir /var/lib/proxmox-backup/tape
  tape-restore restore --drive /srv/vtape --status-dir ./tape-status \\
      --media-set 9f1c…-uuid --store target --datastore target=/srv/pbs/target \\
      --snapshot store1:vm/100/2024-01-02T00:00:00Z --plan
  tape-restore verify-media TAPE01 --drive /srv/vtape

Exit codes: 0 success, 1 failure (or a snapshot that could not be restored, or damage
found), 2 usage error, 130/143 interrupted. See the README for every option.`,
  );

for (const register of [registerRestore, registerVerifyMedia, registerMedia]) register(program);

await program.parseAsync(process.argv).catch(async (error: unknown) => {
  // --help and --version: done. Exit now, before a reader that went away (`--help | head`)
  // turns the help text's EPIPE into an unhandled 'error' event while blockio loads.
  if ((error as { exitCode?: unknown }).exitCode === 0) process.exit(0);
  const { exitOnParserError } = await import('@x/blockio/cli');
  exitOnParserError('tape-restore', error);
});
