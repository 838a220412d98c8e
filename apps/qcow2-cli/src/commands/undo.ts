import type { Command } from 'commander';

const HELP = `
Puts back every byte the last repair, set-feature or poke session overwrote
(newest session first; run again to undo an earlier one), restores the file
size, and removes that session from the undo log. Refuses when the image was
changed since in a range the session wrote, unless --force.

Exit codes: 0 undone, 1 failed (nothing to undo, image changed since), 2 usage error.

Examples:
  qcow2 undo disk.qcow2
  qcow2 undo --dry-run disk.qcow2      show what would be restored`;

export interface UndoCliOptions {
  undoLog?: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export function registerUndo(program: Command): void {
  program
    .command('undo')
    .description('undo the last repair, set-feature or poke from the undo log')
    .argument('<image>', 'the qcow2 image')
    .option('--undo-log <path>', 'undo log to read (default <image>.qcow2-undo)')
    .option('-f, --force', 'undo even where the image changed since')
    .option('-n, --dry-run', 'show what would be restored; change nothing')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', HELP)
    .action(async (image: string, options: UndoCliOptions) => {
      const { runCommand } = await import('@x/blockio/cli');
      const flags = { program: 'qcow2', json: options.json, optionFlags: { force: '--force' } };
      await runCommand(flags, async (context) => {
        const { undoRepair } = await import('@x/qcow2/diagnosis');
        const result = await undoRepair(image, options);
        if (options.json) context.printJson(result);
        else {
          context.print(
            `${result.dryRun ? 'Would undo' : 'Undid'} "${result.description}" of ${new Date(result.timeMs).toISOString()}${result.complete ? '' : ' (an interrupted session)'}: ${result.records} ranges, ${result.restoredBytes} bytes; image size ${result.imageSize}.`,
          );
          if (result.changedSince > 0)
            context.print(
              `${result.changedSince} ranges had changed since (overwritten by --force).`,
            );
          context.print(
            `${result.remainingSessions} earlier sessions remain in ${result.undoLog}.`,
          );
        }
      });
    });
}
