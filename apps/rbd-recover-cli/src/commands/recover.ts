import { type Command, Option } from 'commander';
import {
  addExamples,
  type CommonOptions,
  jsonOption,
  metadataOptions,
  perObjectOption,
  poolNameOption,
  progressOption,
  sshOptions,
  workdirOption,
} from './common.js';
import type { MetadataFlags, SshFlags } from './parse-options.js';

export interface RecoverOptions extends CommonOptions, MetadataFlags, SshFlags {
  output: string;
  format: 'raw' | 'qcow2';
  allSnapshots?: boolean;
  resume?: boolean;
  force?: boolean;
  threads?: string;
}

export function registerRecover(program: Command): void {
  const command = program
    .command('recover')
    .summary('rebuild an image, a snapshot, or the image with every snapshot')
    .description(
      'Rebuilds <image> (or its snapshot <image>@<snap>) from the OSDs the inventory lists, copying ' +
        'objects from every host at once (a few tar streams per host), into a sparse raw file of ' +
        "exactly the image's (or the snapshot's own) size. With --all-snapshots: --format qcow2 gives " +
        'one QCOW2 image holding every snapshot as an internal snapshot of the same name (qemu-img ' +
        'snapshot -a <snap> goes back to it); raw gives a directory of <image>.raw and <image>@<snap>.raw. ' +
        'The work happens in <output>.rbd-recover/ (a lock, a state file, the files being written): ' +
        'nothing appears under the output name until it is complete, an interrupted run continues ' +
        'with --resume without copying finished objects again, and the report lists every object ' +
        'that could not be read (zeros in the output). Exit code 1 when some object could not be ' +
        'read: the output exists, the report says where it holds zeros.',
    )
    .argument('<image>', '<pool>/[<namespace>/]<image>[@<snap>]')
    .requiredOption(
      '-o, --output <path>',
      'the raw file, QCOW2 file, or (raw --all-snapshots) directory',
    )
    .addOption(
      new Option('--format <format>', 'output format').choices(['raw', 'qcow2']).default('raw'),
    )
    .option('--all-snapshots', 'every snapshot too (one QCOW2 image, or a directory of raw files)')
    .option('--resume', 'continue an interrupted run (objects it finished are not copied again)')
    .option('--force', 'replace an existing output; start over instead of resuming')
    .option('-j, --jobs <n>', 'tar streams per OSD at the same time (default 1)')
    .option(
      '--threads <n>',
      'threads running the SSH transfers (default: 3, one per tar stream; on one core 0: none)',
    );
  workdirOption(command);
  metadataOptions(command);
  sshOptions(command);
  poolNameOption(command);
  perObjectOption(command);
  jsonOption(command);
  progressOption(command);
  command.action(async (image: string, options: RecoverOptions) => {
    const { runCommand } = await import('@x/blockio/cli');
    await runCommand(
      {
        program: 'rbd-recover',
        json: options.json,
        progress: options.progress,
        optionFlags: { overwrite: '--force', resume: '--resume' },
      },
      async (context) => {
        const { runRecover } = await import('./recover-run.js');
        return runRecover(image, options, context);
      },
    );
  });
  addExamples(command, [
    'rbd-recover recover rbd/vm-disk -o vm-disk.raw',
    'rbd-recover recover rbd/vm-disk@before-upgrade -o before-upgrade.raw',
    'rbd-recover recover rbd/vm-disk --all-snapshots --format qcow2 -o vm-disk.qcow2',
    'rbd-recover recover 1/tenant-a/db --all-snapshots -o db-states/',
    'rbd-recover recover rbd/vm-disk -o vm-disk.raw --resume',
  ]);
}
