import { type Command, Option } from 'commander';
import { addExamples } from './read-options.js';

export interface CreateCliOptions {
  format?: string;
  options: string[];
  backingFile?: string;
  backingFormat?: string;
  force?: boolean;
  quiet?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerCreate(program: Command): void {
  const command = program
    .command('create')
    .summary('create a new, empty qcow2 image (qemu-img create)')
    .description(
      "Create <image> as `qemu-img create -f qcow2` does, byte for byte, with qemu-img's " +
        '-o options: compat=0.10|1.1, cluster_size, refcount_bits, compression_type=zlib|zstd, ' +
        'extended_l2, preallocation=off|metadata, backing_file/backing_fmt (or -b/-F), ' +
        'lazy_refcounts, data_file, data_file_raw, size. <size> takes K, M, G, T suffixes ' +
        "(binary) and is rounded up to 512 bytes; without it, the backing file's size is used. " +
        'An existing <image> is refused unless --force; the file is created mode 0600 under a ' +
        'temporary name and renamed when complete.',
    )
    .argument('<image>', 'qcow2 file to create')
    .argument('[size]', "virtual size, e.g. 10G (default: the backing file's)")
    .addOption(new Option('-f, --format <format>', 'image format (qcow2 only)').choices(['qcow2']))
    .option(
      '-o, --options <list>',
      'creation options, name=value[,name=value…] (repeatable)',
      collect,
      [],
    )
    .option('-b, --backing-file <file>', 'backing file name stored in the image (-o backing_file)')
    .addOption(
      new Option(
        '-F, --backing-format <format>',
        'format of the backing file (-o backing_fmt)',
      ).choices(['qcow2', 'raw']),
    )
    .option('--force', 'replace <image> if it exists')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the result as one JSON document on stdout')
    .action((image: string, size: string | undefined, options: CreateCliOptions) =>
      runCreate(image, size, options),
    );
  addExamples(command, [
    'qcow2 create disk.qcow2 20G',
    'qcow2 create -o compat=0.10,cluster_size=4k disk-v2.qcow2 1G',
    'qcow2 create -o compression_type=zstd,extended_l2=on,refcount_bits=8 disk.qcow2 100G',
    'qcow2 create -o preallocation=metadata disk.qcow2 10G',
    'qcow2 create -b base.qcow2 -F qcow2 overlay.qcow2',
    'qcow2 create --json disk.qcow2 1G | jq .',
  ]);
}

async function runCreate(
  image: string,
  sizeText: string | undefined,
  options: CreateCliOptions,
): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand(
    { program: 'qcow2', json: options.json, optionFlags: { overwrite: '--force' } },
    async (context) => {
      const { createImage } = await import('./create-run.js');
      await createImage(image, sizeText, options, context);
    },
  );
}
