import { type Command, Option } from 'commander';
import {
  addExamples,
  type CommonOptions,
  objectSizeOption,
  progressMode,
  progressOption,
} from './options.js';

export interface CreateOptions extends CommonOptions {
  from?: string;
  snapshot?: string;
  output?: string;
  backing: 'allow' | 'deny' | 'ignore';
}

export function registerCreate(program: Command): void {
  const command = program
    .command('create')
    .summary('write the changes between two snapshots as a backup stream')
    .description(
      'Compare <from> and <to> object by object (4 MiB objects unless --object-size) and write ' +
        'what changed, trimmed to 512-byte sectors, as the stream `dog vdi backup -F from -s to` ' +
        'writes (byte for byte). Objects unallocated in both snapshots, and QCOW2 clusters both ' +
        'snapshots share, are never read.\n\n' +
        'Two raw (or QCOW2) images: -F and -s are the files, no <source>.\n' +
        'QCOW2 internal snapshots: <source> is the image; -F and -s name snapshots (an id if all ' +
        'digits, else a name); without -s, the active layer.\n' +
        'Sheepdog: <source> is sheepdog://host:port/vdi; -F and -s take a snapshot id or tag, as dog does.\n\n' +
        'The stream goes to -o FILE (written as FILE.partial and renamed when complete) or to ' +
        'standard output (-o - or no -o; never to a terminal).',
    )
    .argument('[source]', 'a QCOW2 image or sheepdog://host:port/vdiname (none for two images)')
    .requiredOption('-F, --from <from>', 'the older snapshot: an image file, a snapshot id or name')
    .option('-s, --snapshot <to>', 'the newer snapshot (QCOW2: omit for the active layer)')
    .option('-o, --output <file>', 'where the stream goes; - for standard output (the default)')
    .option('--force', 'replace the output file if it exists')
    .option('--no-sync', 'do not fsync the output before renaming it into place')
    .option('--json', 'print a JSON summary on stdout (needs -o FILE)')
    .addOption(
      new Option(
        '--backing <policy>',
        'backing files of QCOW2 images: allow (follow them, as qemu-img does), deny, or ignore',
      )
        .choices(['allow', 'deny', 'ignore'])
        .default('allow'),
    );
  objectSizeOption(command);
  progressOption(command);
  command.action((source: string | undefined, options: CreateOptions) =>
    runCreateCommand(source, options),
  );
  addExamples(command, [
    'vdi-backup create -F a.raw -s b.raw --object-size 4M -o diff.backup',
    'vdi-backup create -F 1 -s 2 disk.qcow2 -o snap1-to-snap2.backup',
    'vdi-backup create -F nightly disk.qcow2 -o since-nightly.backup     # to the active layer',
    'vdi-backup create -F snap1 -s snap2 sheepdog://10.0.0.5:7000/alpha | ssh backup "cat > alpha.backup"',
  ]);
}

async function runCreateCommand(source: string | undefined, options: CreateOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand(
    {
      program: 'vdi-backup',
      json: options.json,
      progress: progressMode(options),
      optionFlags: { overwrite: '--force' },
    },
    async (context) => {
      const { runCreate } = await import('../run/create-run.js');
      await runCreate(source, options, context);
    },
  );
}
