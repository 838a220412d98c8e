import type { Command } from 'commander';

const HELP = `
Sets or clears the header's corrupt and dirty bits by hand, saving the old
header bytes to the undo log. Clearing is refused while qcow2 check still
finds what the bit warns about (stale refcounts for dirty, corruption for
corrupt), unless --force.

Exit codes: 0 done, 1 refused or failed, 2 usage error.

Examples:
  qcow2 set-feature disk.qcow2 --clear corrupt
  qcow2 set-feature disk.qcow2 --clear dirty --force`;

const FLAGS = ['corrupt', 'dirty'];

export interface SetFeatureCliOptions {
  set: string[];
  clear: string[];
  force?: boolean;
  dryRun?: boolean;
  undoLog?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerSetFeature(program: Command): void {
  program
    .command('set-feature')
    .description("set or clear the header's corrupt and dirty bits (with an undo log)")
    .argument('<image>', 'the qcow2 image')
    .option('--clear <bit>', 'clear corrupt or dirty (repeatable)', collect, [])
    .option('--set <bit>', 'set corrupt or dirty (repeatable)', collect, [])
    .option('-f, --force', 'clear even though check still finds problems')
    .option('-n, --dry-run', 'show the change; write nothing')
    .option('--undo-log <path>', 'undo log to write (default <image>.qcow2-undo)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', HELP)
    .action(async (image: string, options: SetFeatureCliOptions) => {
      const { runCommand, UsageError } = await import('@x/blockio/cli');
      const flags = { program: 'qcow2', json: options.json, optionFlags: { force: '--force' } };
      await runCommand(flags, async (context) => {
        const bits = [...options.set, ...options.clear];
        if (bits.length === 0) throw new UsageError('give --set or --clear with corrupt or dirty');
        const unknown = bits.filter((bit) => !FLAGS.includes(bit));
        if (unknown.length > 0)
          throw new UsageError(`unknown bit ${unknown.join(', ')}: only corrupt and dirty`);
        const both = options.set.filter((bit) => options.clear.includes(bit));
        if (both.length > 0)
          throw new UsageError(`cannot both --set and --clear ${[...new Set(both)].join(', ')}`);
        const { setFeature } = await import('@x/qcow2/diagnosis');
        const result = await setFeature(image, {
          set: options.set as Array<'corrupt' | 'dirty'>,
          clear: options.clear as Array<'corrupt' | 'dirty'>,
          force: options.force,
          dryRun: options.dryRun,
          undoLog: options.undoLog,
        });
        if (options.json) context.printJson(result);
        else {
          context.print(
            result.changed
              ? `incompatible_features ${result.before} -> ${result.after}${result.dryRun ? ' (dry run: not written)' : ''}`
              : `incompatible_features is already ${result.after}; nothing written`,
          );
          if (result.undoLog) context.print(`Undo log: ${result.undoLog}`);
        }
      });
    });
}
