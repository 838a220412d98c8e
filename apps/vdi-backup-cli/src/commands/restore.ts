import type { Command } from 'commander';
import {
  addExamples,
  type CommonOptions,
  objectSizeOption,
  progressMode,
  progressOption,
} from './options.js';

export interface RestoreOptions extends CommonOptions {
  snapshot: string;
  input?: string;
  as?: string;
  backing: 'allow' | 'deny' | 'ignore';
}

export function registerRestore(program: Command): void {
  const command = program
    .command('restore')
    .summary('apply a backup stream to the snapshot it was made from')
    .description(
      'Apply a stream (-i FILE, or standard input: never a terminal) to the base snapshot -s. ' +
        'The whole stream is validated first — header, every record, that it fits the base — ' +
        'so a bad stream changes nothing (standard input is spooled to a temporary file for that).\n\n' +
        'Raw: -s is the base image and <target> the restored image, a new file (written as ' +
        '<target>.partial and renamed when complete; an existing file is refused without --force).\n' +
        'QCOW2 (<target> is a QCOW2 image): -s names the base snapshot; the result becomes a new ' +
        'internal snapshot named by --as (the active layer is left as it was), or, without --as, ' +
        'the active layer (what it held is replaced, as a revert to -s would).\n' +
        'Sheepdog (<target> is sheepdog://host:port/vdi): as `dog vdi restore -s SNAP`: a new ' +
        "snapshot holding -s + the stream, and a fresh working VDI on the old one's parent. The " +
        'working VDI is replaced only after the stream has been validated, and a working VDI ' +
        'holding writes that are in no snapshot is refused unless --force.',
    )
    .argument(
      '<target>',
      'restored raw image to create, a QCOW2 image, or sheepdog://host:port/vdi',
    )
    .requiredOption(
      '-s, --snapshot <base>',
      'the base: a raw image, a QCOW2 snapshot, a Sheepdog snapshot id or tag',
    )
    .option('-i, --input <file>', 'the stream; - for standard input (the default)')
    .option('--as <name>', 'QCOW2: store the result as a new internal snapshot with this name')
    .option('--force', 'raw: replace <target> if it exists; Sheepdog: discard unsnapshotted writes')
    .option('--no-sync', 'do not fsync the restored raw image before renaming it into place')
    .option('--json', 'print a JSON summary on stdout');
  objectSizeOption(command);
  progressOption(command);
  command.action((target: string, options: RestoreOptions) => runRestoreCommand(target, options));
  addExamples(command, [
    'vdi-backup restore -s base.raw out.raw -i diff.backup',
    'ssh backup "cat alpha.backup" | vdi-backup restore -s base.raw out.raw',
    'vdi-backup restore -s nightly disk.qcow2 --as restored -i since-nightly.backup',
    'vdi-backup restore -s snap1 sheepdog://127.0.0.1:7000/alpha -i snap1-to-snap2.backup',
  ]);
}

async function runRestoreCommand(target: string, options: RestoreOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand(
    {
      program: 'vdi-backup',
      json: options.json,
      progress: progressMode(options),
      optionFlags: { overwrite: '--force', discardWorkingChanges: '--force' },
    },
    async (context) => {
      const { runRestore } = await import('../run/restore-run.js');
      await runRestore(target, options, context);
    },
  );
}
