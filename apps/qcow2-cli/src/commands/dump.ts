import type { Command } from 'commander';

const HELP = `
Prints an image's structures for people repairing by hand, read-only; works
on images too damaged to open. With no section options: --header
--snapshots --l1. Unallocated L2 entries are skipped; refcounts are printed
as runs of equal values per refcount block.

Exit codes: 0 done, 1 failed (not qcow2, unreadable), 2 usage error.

Examples:
  qcow2 dump disk.qcow2                       header, snapshots and L1 table
  qcow2 dump --header-offsets disk.qcow2      each header field with its byte offset
  qcow2 dump --l2 --snapshot all disk.qcow2   every L2 entry of every table
  qcow2 dump --refcounts --json disk.qcow2    refcount table and blocks as JSON`;

export interface DumpCliOptions {
  header?: boolean;
  headerOffsets?: boolean;
  l1?: boolean;
  l2?: boolean;
  refcounts?: boolean;
  snapshots?: boolean;
  snapshot: string;
  json?: boolean;
}

export function registerDump(program: Command): void {
  program
    .command('dump')
    .description('print the header, snapshot table, L1/L2 tables and refcounts (read-only)')
    .argument('<image>', 'the qcow2 image')
    .option('--header', 'header fields, feature bits and header extensions')
    .option('--header-offsets', 'each header field with its byte offset and raw value')
    .option('--snapshots', 'the snapshot table')
    .option('--l1', 'L1 table entries')
    .option('--l2', 'L2 table entries (allocated ones)')
    .option('--refcounts', 'refcount table entries and refcounts (as runs)')
    .option(
      '-s, --snapshot <which>',
      'whose L1/L2 tables: active, inactive, all, or a snapshot ID or NAME',
      'active',
    )
    .option('--json', 'print one JSON document on stdout')
    .addHelpText('after', HELP)
    .action(async (image: string, options: DumpCliOptions) => {
      const { runCommand } = await import('@x/blockio/cli');
      await runCommand({ program: 'qcow2', json: options.json }, async (context) => {
        const { runDump } = await import('./dump-run.js');
        await runDump(image, options, context);
      });
    });
}
