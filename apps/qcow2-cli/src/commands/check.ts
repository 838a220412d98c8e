import { type Command, Option } from 'commander';

const EXIT_CODES = `
Exit codes (the highest applicable one wins):
  0  clean
  1  leaked clusters only (wasted space, no harm to data)
  2  COPIED flag mismatches (and nothing worse)
  3  clean, but the header's corrupt or dirty bit is set
  4  refcount errors (stored refcount below the references; a write may reuse a cluster in use)
  5  snapshot table damaged
  6  corrupt: invalid L1/L2 entries, overlapping metadata, reused clusters
  8  the check could not run (not qcow2, unreadable, unsupported)`;

const EXAMPLES = `
Examples:
  qcow2 check disk.qcow2                  verdict and summary figures
  qcow2 check --mode error disk.qcow2     every problem with table, entry, host and guest offsets
  qcow2 check --mode dump disk.qcow2 | less   every L1/L2 entry with its flags, then the report
  qcow2 check --mode info broken.qcow2    header facts of an image too damaged to open
  qcow2 check --snapshot 1 --json disk.qcow2  report entry problems of snapshot 1 only, as JSON
  qcow2 check -r leaks disk.qcow2         free leaked clusters (as qcow2 repair --leaks; undo log kept)
  qcow2 check -r all disk.qcow2           repair what qcow2 repair repairs (qemu-img check -r all)`;

interface CheckCliOptions {
  mode: string;
  snapshot: string;
  json?: boolean;
  progress?: string;
  format?: 'qcow2' | 'raw';
  repair?: 'leaks' | 'all';
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('check an image for damage, read-only (refcounts, COPIED, tables, snapshots)')
    .argument('<image>', 'the qcow2 image')
    .option(
      '-m, --mode <mode>',
      'check (verdict only), error (where each error is), dump (every table), info (header facts)',
      'check',
    )
    .option(
      '-s, --snapshot <which>',
      'whose tables to report entry problems for: active, inactive, all, or a snapshot ID or NAME',
      'all',
    )
    .option('--json', 'print the report as JSON on stdout (dump mode: JSON lines, report last)')
    .option('--progress <when>', 'progress bar on stderr: auto, always or never', 'auto')
    .addOption(
      new Option(
        '-f, --format <format>',
        'image format, as qemu-img (raw has nothing to check)',
      ).choices(['qcow2', 'raw']),
    )
    .addOption(
      new Option(
        '-r, --repair <what>',
        'repair as qemu-img check -r does, through qcow2 repair (undo log kept): leaks or all',
      ).choices(['leaks', 'all']),
    )
    .addHelpText('after', `${EXIT_CODES}\n${EXAMPLES}`)
    .action(async (image: string, options: CheckCliOptions) => {
      const { runCommand, printError, UsageError } = await import('@x/blockio/cli');
      await runCommand(
        { program: 'qcow2', json: options.json, progress: options.progress },
        async (context) => {
          if (options.format === 'raw') {
            printError(
              'qcow2',
              new UsageError(`${image}: a raw image has no metadata to check`),
              context.json,
            );
            return 8;
          }
          if (options.repair !== undefined) {
            if (options.mode !== 'check') throw new UsageError('-r does not go with --mode');
            // The same repair as `qcow2 repair` (-r leaks: --leaks; -r all: everything).
            const { runRepair } = await import('./repair-run.js');
            return runRepair(
              image,
              { leaks: options.repair === 'leaks', json: options.json, progress: options.progress },
              context,
            );
          }
          const { runCheck } = await import('./check-run.js');
          return runCheck(image, options, context);
        },
      );
    });
}
