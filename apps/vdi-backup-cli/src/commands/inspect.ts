import type { Command } from 'commander';
import { addExamples, objectSizeOption } from './options.js';

export interface InspectOptions {
  objectSize?: string;
  json?: boolean;
  records?: boolean;
}

export function registerInspect(program: Command): void {
  const command = program
    .command('inspect')
    .summary('show what a backup stream holds')
    .description(
      'Validate a stream and describe it: layout (dog, or the 2012 16-byte-header one), ' +
        'records, data bytes, the changed objects; --records lists every record. ' +
        '<file> may be - for standard input.',
    )
    .argument('<file>', 'the stream')
    .option('--records', 'list every record (idx, offset, length, stream offset)')
    .option('--json', 'print the description as JSON on stdout');
  objectSizeOption(command);
  command.action((file: string, options: InspectOptions) => runInspectCommand(file, options));
  addExamples(command, [
    'vdi-backup inspect nightly.backup',
    "vdi-backup inspect --json --records nightly.backup | jq '.records[] | select(.length > 1048576)'",
  ]);
}

async function runInspectCommand(file: string, options: InspectOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand({ program: 'vdi-backup', json: options.json }, async (context) => {
    const { runInspect } = await import('../run/inspect-run.js');
    await runInspect(file, options, context);
  });
}
