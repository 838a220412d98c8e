import { type Command, Option } from 'commander';
import { collect } from '../usage.js';

export interface RestoreCliOptions {
  drive: string;
  statusDir: string;
  mediaSet: string;
  store: string;
  datastore: string[];
  owner?: string;
  snapshot?: string[];
  plan?: boolean;
  json?: boolean;
  progress?: string;
  catalogDir?: string;
}

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .summary('restore snapshots (or a whole media set) into datastores')
    .description(
      'Restore the given snapshots from a media set, reading only the chunks the target\n' +
        'datastores lack (PBS\'s "restore single snapshots"). Without --snapshot, restore\n' +
        'everything on every tape of the media set and rebuild its catalogs (full restore).',
    )
    .requiredOption(
      '--drive <dir>',
      'PBS virtual tape drive directory, or a directory of dd dumps (one sub-directory per tape)',
    )
    .requiredOption(
      '--status-dir <dir>',
      'PBS tape status directory: inventory.json and <media-uuid>.log',
    )
    .requiredOption('--media-set <uuid>', 'the media set to restore from')
    .requiredOption(
      '--store <mapping>',
      'target datastore mapping: a default target and/or source=target, comma-separated',
    )
    .option(
      '--datastore <name=path>',
      'where a target datastore lives on disk (repeatable)',
      collect,
    )
    .option(
      '--owner <authid>',
      'owner of restored groups (user@realm or user@realm!token)',
      'root@pam',
    )
    .option(
      '--snapshot <spec>',
      'store:[ns/<a>/…/]<type>/<id>/<time> to restore (repeatable)',
      collect,
    )
    .option('--plan', 'print which tapes and files the restore will read; change nothing')
    .option(
      '--catalog-dir <dir>',
      'full restore: write the rebuilt catalogs here (default: --status-dir)',
    )
    .option('--json', 'print one JSON document (the summary, or the plan) on stdout')
    .addOption(
      new Option('--progress <mode>', 'progress bar on stderr').choices([
        'auto',
        'always',
        'never',
      ]),
    )
    .addHelpText(
      'after',
      `
Examples:
  # What would restoring one VM snapshot read? (no tape is loaded)
  tape-restore restore --drive /srv/vtape --status-dir ./status --media-set <uuid> \\
      --store target --datastore target=/srv/pbs/target \\
      --snapshot store1:vm/100/2024-01-02T00:00:00Z --plan

  # Restore it, and a container snapshot of namespace prod into another datastore:
  tape-restore restore --drive /srv/vtape --status-dir ./status --media-set <uuid> \\
      --store target,store2=other --datastore target=/srv/pbs/target \\
      --datastore other=/srv/pbs/other \\
      --snapshot store1:vm/100/2024-01-02T00:00:00Z \\
      --snapshot store2:ns/prod/ct/200/2024-01-03T00:00:00Z --json`,
    )
    .action(async (options: RestoreCliOptions) => {
      const { runRestore } = await import('./restore-run.js');
      await runRestore(options);
    });
}
