import type { Command } from 'commander';
import { addExamples, objectSizeOption } from './options.js';

export interface VerifyOptions {
  objectSize?: string;
  size?: string;
  json?: boolean;
}

export function registerVerify(program: Command): void {
  const command = program
    .command('verify')
    .summary('check a backup stream without applying it')
    .description(
      'Make the checks a restore makes before writing anything: the header, every record ' +
        '(multiples of 512, inside its object and — with --size — inside the disk, in order, ' +
        'without overlap), the end record exactly at the end. Exit 0 when the stream is sound, ' +
        '1 with the first problem (its byte offset and record) otherwise.',
    )
    .argument('<file>', 'the stream (- for standard input)')
    .option('--size <size>', 'size of the disk it will be applied to, e.g. 64G')
    .option('--json', 'print the result as JSON on stdout');
  objectSizeOption(command);
  command.action((file: string, options: VerifyOptions) => runVerifyCommand(file, options));
  addExamples(command, [
    'vdi-backup verify nightly.backup',
    'vdi-backup verify nightly.backup --object-size 1M --size 20G',
  ]);
}

async function runVerifyCommand(file: string, options: VerifyOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand({ program: 'vdi-backup', json: options.json }, async (context) => {
    const { runVerify } = await import('../run/verify-run.js');
    await runVerify(file, options, context);
  });
}
