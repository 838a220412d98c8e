import type { Command } from 'commander';
import {
  addExamples,
  type CommonOptions,
  objectSizeOption,
  progressMode,
  progressOption,
} from './options.js';

export interface MergeOptions extends CommonOptions {
  output: string;
}

export function registerMerge(program: Command): void {
  const command = program
    .command('merge')
    .summary('collapse a chain of backup streams into one')
    .description(
      'Write one stream equivalent to applying <a>, then <b>, then … (restoring it gives the ' +
        'same image): per object, the ranges the streams write are merged where they overlap ' +
        'or touch, later streams winning. Every input is validated before the output is ' +
        'created; they are then read in one pass, one object at a time (memory stays at one ' +
        'object, however long the chain).',
    )
    .argument('<streams...>', 'the streams, oldest first (at least two)')
    .requiredOption('-o, --output <file>', 'the merged stream; - for standard output')
    .option('--force', 'replace the output file if it exists')
    .option('--no-sync', 'do not fsync the output before renaming it into place')
    .option('--json', 'print a JSON summary on stdout (needs -o FILE)');
  objectSizeOption(command);
  progressOption(command);
  command.action((streams: string[], options: MergeOptions) => runMergeCommand(streams, options));
  addExamples(command, [
    'vdi-backup merge mon-tue.backup tue-wed.backup wed-thu.backup -o mon-thu.backup',
    'vdi-backup merge $(ls -1 nightly-*.backup) -o - | vdi-backup restore -s base.raw now.raw',
  ]);
}

async function runMergeCommand(streams: string[], options: MergeOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand(
    {
      program: 'vdi-backup',
      json: options.json,
      progress: progressMode(options),
      optionFlags: { overwrite: '--force' },
    },
    async (context) => {
      const { runMerge } = await import('../run/merge-run.js');
      await runMerge(streams, options, context);
    },
  );
}
