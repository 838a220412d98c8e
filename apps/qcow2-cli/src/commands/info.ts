import { type Command, Option } from 'commander';
import { addExamples, backingOption } from './read-options.js';

interface InfoOptions {
  format?: 'qcow2' | 'raw';
  json?: boolean;
  backingChain?: boolean;
  backing: 'allow' | 'deny' | 'ignore';
  allocation: boolean;
}

export function registerInfo(program: Command): void {
  const command = program
    .command('info')
    .summary('show what an image is: size, format details, features, snapshots, allocation')
    .description(
      'Show the facts `qemu-img info` prints (same JSON keys where they overlap) plus every ' +
        'feature bit by name, the header extensions, and allocation and fragmentation figures.',
    )
    .argument('<image>', 'qcow2 or raw image')
    .addOption(
      new Option('-f, --format <format>', 'image format (default: detected by its magic)').choices([
        'qcow2',
        'raw',
      ]),
    )
    .option('--json', 'print one JSON document on stdout')
    .option('--backing-chain', 'describe every image of the backing chain, top first')
    .addOption(backingOption())
    .option('--no-allocation', 'skip the L1/L2 walk behind the allocation figures')
    .action((image: string, options: InfoOptions) => runInfo(image, options));
  addExamples(command, [
    'qcow2 info disk.qcow2',
    'qcow2 info --json disk.qcow2 | jq \'."format-specific".data\'',
    'qcow2 info --backing-chain overlay.qcow2',
  ]);
}

async function runInfo(image: string, options: InfoOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand({ program: 'qcow2', json: options.json }, async (context) => {
    const { backingChainInfo, imageInfo } = await import('@x/qcow2/read');
    const infoOptions = {
      backingPolicy: options.backing,
      skipAllocation: !options.allocation,
      format: options.format,
      signal: context.signal,
    };
    const infos = options.backingChain
      ? await backingChainInfo(image, infoOptions)
      : [await imageInfo(image, infoOptions)];
    // A damaged image: what could be read is printed, and the exit code says not all.
    const damaged = infos.some((info) => info.problems !== undefined);
    for (const info of infos) {
      if (info.problems === undefined) continue;
      process.stderr.write(
        `qcow2: error: ${info.filename}: damaged, ${info.problems.length} structure(s) could not be read; run qcow2 check ${info.filename}\n`,
      );
    }
    if (context.json) {
      context.printJson(options.backingChain ? infos : infos[0]);
      return damaged ? 1 : 0;
    }
    const { formatInfo } = await import('./info-format.js');
    context.print(infos.map(formatInfo).join('\n\n'));
    return damaged ? 1 : 0;
  });
}
