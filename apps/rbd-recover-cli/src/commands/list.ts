import type { Command } from 'commander';
import {
  addExamples,
  type CommonOptions,
  jsonOption,
  perObjectOption,
  poolNameOption,
  workdirOption,
} from './common.js';

export interface ListOptions extends CommonOptions {
  pool?: string;
}

export function registerList(program: Command): void {
  const command = program
    .command('list')
    .summary('list the images of every pool and namespace')
    .description(
      'Lists every RBD image the inventory holds, format 1 and 2, in every pool and RBD namespace, ' +
        'as <pool>/[<namespace>/]<image> (pools by name when an OSD map or --pool-name names them).',
    )
    .option('--pool <id|name>', 'only this pool');
  workdirOption(command);
  poolNameOption(command);
  perObjectOption(command);
  jsonOption(command);
  command.action(async (options: ListOptions) => {
    const { runCommand } = await import('@x/blockio/cli');
    await runCommand({ program: 'rbd-recover', json: options.json }, async (context) => {
      const { runList } = await import('./list-run.js');
      return runList(options, context);
    });
  });
  addExamples(command, ['rbd-recover list', 'rbd-recover list --pool rbd --json']);
}
