import { type Command, Option } from 'commander';
import { addExamples, backingOption } from './read-options.js';

export interface ResizeCliOptions {
  format?: string;
  preallocation: 'off' | 'metadata';
  shrink?: boolean;
  quiet?: boolean;
  json?: boolean;
  backing: 'allow' | 'deny' | 'ignore';
}

export function registerResize(program: Command): void {
  const command = program
    .command('resize')
    .summary('grow or shrink the virtual disk of a qcow2 image (qemu-img resize)')
    .description(
      'Set the virtual size of <image> to <size>, or change it by +<size> / -<size>, as ' +
        '`qemu-img resize` does (the file ends up byte for byte the same). Growing always works ' +
        '(--preallocation metadata allocates the new range up front). Shrinking drops what the ' +
        'image holds past the new end, so it is done only when the image holds nothing but zeros ' +
        'there, or with --shrink. The image is changed in place.',
    )
    .argument('<image>', 'qcow2 image to resize (written in place)')
    .argument('<size>', 'new size (10G), or a change: +10G, -512M; K, M, G, T suffixes (binary)')
    .addOption(new Option('-f, --format <format>', 'image format (qcow2 only)').choices(['qcow2']))
    .addOption(
      new Option('--preallocation <mode>', 'for the new range when growing: off or metadata')
        .choices(['off', 'metadata'])
        .default('off'),
    )
    .option('--shrink', 'shrink even though the image holds data past the new end (it is lost)')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the result as one JSON document on stdout')
    .addOption(backingOption())
    .action((image: string, size: string, options: ResizeCliOptions) =>
      runResize(image, size, options),
    );
  addExamples(command, [
    'qcow2 resize disk.qcow2 +10G',
    'qcow2 resize --preallocation metadata disk.qcow2 100G',
    'qcow2 resize disk.qcow2 -1G             refused if the last GiB holds data',
    'qcow2 resize --shrink disk.qcow2 20G    drops whatever lies past 20 GiB',
    'qcow2 resize --json disk.qcow2 64G',
  ]);
}

async function runResize(
  image: string,
  sizeText: string,
  options: ResizeCliOptions,
): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand(
    { program: 'qcow2', json: options.json, optionFlags: { shrink: '--shrink' } },
    async (context) => {
      const { resizeImage } = await import('./resize-run.js');
      await resizeImage(image, sizeText, options, context);
    },
  );
}
