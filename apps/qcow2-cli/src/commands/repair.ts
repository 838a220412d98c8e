import type { Command } from 'commander';

const HELP = `
Repairs what qemu-img check -r all repairs, more carefully, and rebuilds a
destroyed refcount structure. With no selection it does --leaks --refcounts
--copied (rebuilding the refcount structure when refcount blocks are missing
or the table is damaged). Every metadata byte it overwrites is saved first to
<image>.qcow2-undo; "qcow2 undo <image>" puts them back. Never run it on an
image a VM is using.

It never leaves qemu-img check more errors than it found. It refuses to:
raise the refcount of a cluster where guest data aliases metadata (qemu-img
does, which hides the damage); free "leaked" clusters while a damaged table
(snapshot entry, L1/L2 entry, bitmap directory) may own them; write into a
misplaced table. A rebuilt refcount structure goes after every referenced
cluster, even past the end of a truncated file.

Exit codes: as qcow2 check, for the image after the repair (0 = clean now;
in a dry run, for the image as it is); 8 if the repair could not run;
2 usage error.

Examples:
  qcow2 repair disk.qcow2                     repair everything repairable
  qcow2 repair --dry-run disk.qcow2           list the writes, change nothing
  qcow2 repair --leaks disk.qcow2             only free leaked clusters
  qcow2 repair --rebuild-refcounts disk.qcow2 new refcount table and blocks from the L1/L2 tables
  qcow2 undo disk.qcow2                       put the repaired bytes back`;

export interface RepairCliOptions {
  leaks?: boolean;
  refcounts?: boolean;
  copied?: boolean;
  rebuildRefcounts?: boolean;
  dryRun?: boolean;
  undoLog?: string;
  json?: boolean;
  progress?: string;
}

export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description(
      'repair refcounts and COPIED flags (with an undo log); rebuild destroyed refcount structures',
    )
    .argument('<image>', 'the qcow2 image (modified in place)')
    .option('--leaks', 'free leaked clusters (stored refcount above the references)')
    .option(
      '--refcounts',
      'raise refcounts below the references (rebuilds if refcount blocks are missing)',
    )
    .option('--copied', 'fix COPIED flags of the active L1/L2 tables')
    .option('--rebuild-refcounts', 'write a new refcount table and blocks computed from all tables')
    .option('-n, --dry-run', 'show what would be written; change nothing')
    .option('--undo-log <path>', 'undo log to write (default <image>.qcow2-undo)')
    .option('--json', 'print the result as JSON on stdout')
    .option('--progress <when>', 'progress bar on stderr: auto, always or never', 'auto')
    .addHelpText('after', HELP)
    .action(async (image: string, options: RepairCliOptions) => {
      const { runCommand } = await import('@x/blockio/cli');
      await runCommand(
        { program: 'qcow2', json: options.json, progress: options.progress },
        async (context) => {
          const { runRepair } = await import('./repair-run.js');
          return runRepair(image, options, context);
        },
      );
    });
}
