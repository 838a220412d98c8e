import type { Command } from 'commander';
import {
  addExamples,
  type CommonOptions,
  jsonOption,
  metadataOptions,
  perObjectOption,
  poolNameOption,
  workdirOption,
} from './common.js';
import type { MetadataFlags } from './parse-options.js';

export interface LookupOptions extends CommonOptions, MetadataFlags {}

export function registerLookup(program: Command): void {
  const command = program
    .command('lookup')
    .summary("show an image's format, prefix, size, order, features and snapshots")
    .description(
      'Shows what is known of an image: format, id, data object prefix, order, size, features, ' +
        'snap_seq and every snapshot (id, name, own size). <image> is ' +
        '<pool>/[<namespace>/]<image>[@<snap>]; the pool by id or by name.',
    )
    .argument('<image>', '<pool>/[<namespace>/]<image>[@<snap>]');
  workdirOption(command);
  metadataOptions(command);
  poolNameOption(command);
  perObjectOption(command);
  jsonOption(command);
  command.action(async (image: string, options: LookupOptions) => {
    const { runCommand } = await import('@x/blockio/cli');
    await runCommand({ program: 'rbd-recover', json: options.json }, async (context) => {
      const { runLookup } = await import('./lookup-run.js');
      return runLookup(image, options, context);
    });
  });
  addExamples(command, [
    'rbd-recover lookup rbd/vm-disk',
    'rbd-recover lookup 2/tenant-a/db@nightly --json',
    'rbd-recover lookup rbd/lost --prefix rbd_data.102e52f45f67 --order 22',
  ]);
}
