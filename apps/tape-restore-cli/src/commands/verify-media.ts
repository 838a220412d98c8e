import { type Command, Option } from 'commander';

interface VerifyCliOptions {
  drive: string;
  statusDir?: string;
  json?: boolean;
  progress?: string;
}

export function registerVerifyMedia(program: Command): void {
  program
    .command('verify-media')
    .summary('read every file of a tape and check every block, header, blob CRC and digest')
    .description(
      'Read every file of a tape and check every block (magic, sequence, size, end marker),\n' +
        'every header, every DataBlob CRC and the SHA-256 of every unencrypted chunk. Damage is\n' +
        'reported with its file, block and offset; the walk goes on. With --status-dir, the\n' +
        'labels are compared with the inventory and the files with the catalog.',
    )
    .argument('<label>', 'label of the tape')
    .requiredOption('--drive <dir>', 'PBS virtual tape drive directory, or a directory of dd dumps')
    .option(
      '--status-dir <dir>',
      'PBS tape status directory, to compare with inventory and catalog',
    )
    .option('--json', 'print one JSON document on stdout')
    .addOption(
      new Option('--progress <mode>', 'progress bar on stderr').choices([
        'auto',
        'always',
        'never',
      ]),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  tape-restore verify-media WK00001 --drive /srv/vtape\n  tape-restore verify-media WK00001 --drive ./dumps --status-dir ./status --json\n\nExit codes: 0 sound, 1 damage found (or the tape could not be read), 2 usage error.',
    )
    .action(async (label: string, options: VerifyCliOptions) => {
      const { runCommand } = await import('@x/blockio/cli');
      await runCommand(
        { program: 'tape-restore', json: options.json, progress: options.progress },
        async (context) => {
          const { openTapeDrive, verifyMedia, compareWithCatalog } = await import(
            '@x/tape-restore'
          );
          const drive = await openTapeDrive(options.drive);
          const result = await verifyMedia(drive, label, {
            log: (line) => process.stderr.write(`${line}\n`),
            signal: context.signal,
            onProgress: context.json ? undefined : context.progress.listener,
          });
          const mismatches = options.statusDir
            ? await compareWithCatalog(options.statusDir, result)
            : [];
          const sound = result.sound && mismatches.length === 0;
          if (context.json) context.printJson({ ...result, catalogMismatches: mismatches, sound });
          else {
            for (const damage of result.damage)
              context.print(
                `damaged: file ${damage.fileNumber}: ${damage.code}: ${damage.message}`,
              );
            for (const mismatch of mismatches) context.print(`catalog: ${mismatch}`);
            context.print(
              `tape ${label}: ${result.files.length} files, ${sound ? 'sound' : `${result.damage.length + mismatches.length} problems`}`,
            );
          }
          return sound ? 0 : 1;
        },
      );
    });
}
