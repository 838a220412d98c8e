import type { Command } from 'commander';

interface MediaListOptions {
  statusDir: string;
  drive?: string;
  json?: boolean;
}

export function registerMedia(program: Command): void {
  const media = program
    .command('media')
    .summary('list the tapes of the inventory, or what a catalog says is on a tape');
  media
    .command('list')
    .summary('every tape of the inventory: label, uuid, media set and position, status, location')
    .requiredOption('--status-dir <dir>', 'PBS tape status directory (inventory.json)')
    .option('--drive <dir>', 'also say which tapes are in this drive directory')
    .option('--json', 'print one JSON document on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  tape-restore media list --status-dir ./status\n  tape-restore media list --status-dir ./status --drive /srv/vtape --json',
    )
    .action(async (options: MediaListOptions) => {
      const { runCommand } = await import('@x/blockio/cli');
      await runCommand({ program: 'tape-restore', json: options.json }, async (context) => {
        const { listMedia, openTapeDrive } = await import('@x/tape-restore');
        const drive = options.drive ? await openTapeDrive(options.drive) : undefined;
        const list = await listMedia(options.statusDir, drive);
        if (context.json) {
          context.printJson(list);
          return;
        }
        const rows = [
          [
            'label',
            'uuid',
            'pool',
            'media set',
            'seq',
            'status',
            'location',
            ...(drive ? ['online'] : []),
          ],
        ];
        for (const m of list) {
          rows.push([
            m.label,
            m.uuid,
            m.pool ?? '-',
            m.mediaSetUuid ?? '-',
            m.seqNr === undefined ? '-' : String(m.seqNr),
            m.status,
            m.location,
            ...(drive ? [m.online ? 'yes' : 'no'] : []),
          ]);
        }
        const widths =
          rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
        context.print(
          rows
            .map((r) =>
              r
                .map((c, i) => c.padEnd(widths[i] ?? 0))
                .join('  ')
                .trimEnd(),
            )
            .join('\n'),
        );
      });
    });
  media
    .command('catalog')
    .summary('what the catalog says is on a tape, file by file')
    .argument('<label>', 'label of the tape')
    .requiredOption(
      '--status-dir <dir>',
      'PBS tape status directory (inventory.json, <media-uuid>.log)',
    )
    .option('--json', 'print one JSON document on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  tape-restore media catalog WK00001 --status-dir ./status\n  tape-restore media catalog WK00001 --status-dir ./status --json | jq \'.files[] | select(.kind == "snapshot-archive")\'',
    )
    .action(async (label: string, options: { statusDir: string; json?: boolean }) => {
      const { runCommand } = await import('@x/blockio/cli');
      await runCommand({ program: 'tape-restore', json: options.json }, async (context) => {
        const { listMediaCatalog } = await import('@x/tape-restore');
        const listing = await listMediaCatalog(options.statusDir, label);
        if (context.json) {
          context.printJson(listing);
          return;
        }
        const lines = [
          `tape ${listing.label} (${listing.uuid}), media set ${listing.mediaSetUuid ?? '-'} position ${listing.seqNr ?? '-'}`,
        ];
        for (const file of listing.files) {
          lines.push(
            file.kind === 'chunk-archive'
              ? `File ${file.fileNumber}: chunk archive for datastore '${file.store}' (${file.chunks} chunks)`
              : `File ${file.fileNumber}: snapshot archive ${file.store}:${file.snapshot}`,
          );
        }
        context.print(lines.join('\n'));
      });
    });
}
