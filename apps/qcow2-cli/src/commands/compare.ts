import { type Command, Option } from 'commander';
import { addExamples, backingOption } from './read-options.js';

export interface CompareCliOptions {
  format?: 'raw' | 'qcow2';
  secondFormat?: 'raw' | 'qcow2';
  snapshotA?: string;
  snapshotB?: string;
  strict?: boolean;
  quiet?: boolean;
  /** -p: progress even when stderr is not a TTY. */
  p?: boolean;
  progress?: string;
  json?: boolean;
  backing: 'allow' | 'deny' | 'ignore';
}

export function registerCompare(program: Command): void {
  const command = program
    .command('compare')
    .summary('are two images the same disk? (qemu-img compare)')
    .description(
      'Compare the guest bytes of <a> and <b> as `qemu-img compare` does: each may be raw or ' +
        'qcow2 (detected, or -f/-F), an internal snapshot of either (--snapshot-a/--snapshot-b), ' +
        'with its backing chain. Ranges that read as zero in both are skipped. Images of ' +
        'different sizes are identical when the larger holds only zeros past the smaller ' +
        '(a warning says so); with -s (strict) the sizes and every block-status answer (data, ' +
        'zero, allocated, host offset known, reaching the end) must match too, as qemu-img ' +
        'compares them. Prints "Images are identical." or the first differing ' +
        'offset (the start of its 512-byte sector), as qemu-img does. Exit codes: 0 identical, ' +
        '1 different, 2 error (unreadable or damaged image, usage).',
    )
    .argument('<a>', 'first image (qcow2 or raw)')
    .argument('<b>', 'second image (qcow2 or raw)')
    .addOption(new Option('-f, --format <format>', 'format of <a>').choices(['raw', 'qcow2']))
    .addOption(
      new Option('-F, --second-format <format>', 'format of <b>').choices(['raw', 'qcow2']),
    )
    .option('--snapshot-a <id-or-name>', 'compare this internal snapshot of <a>')
    .option('--snapshot-b <id-or-name>', 'compare this internal snapshot of <b>')
    .option('-s, --strict', 'sizes and block status must match too, not only the bytes')
    .option('-q, --quiet', 'print nothing; the exit code tells')
    .option('-p', 'show progress on stderr (same as --progress always), as qemu-img compare -p')
    .option(
      '--progress <mode>',
      'progress on stderr: auto (a bar on a TTY, the default), always or never',
    )
    .option('--json', 'print the result as one JSON document on stdout')
    .addOption(backingOption())
    .action((a: string, b: string, options: CompareCliOptions) => runCompare(a, b, options));
  addExamples(command, [
    'qcow2 compare disk.qcow2 disk.raw',
    'qcow2 compare recovered.qcow2 original.qcow2 && echo same',
    'qcow2 compare --snapshot-a before-upgrade disk.qcow2 backup.raw',
    'qcow2 compare -s -f qcow2 -F qcow2 a.qcow2 b.qcow2',
    'qcow2 compare --json a.qcow2 b.raw | jq ."first-difference"',
  ]);
}

async function runCompare(a: string, b: string, options: CompareCliOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  const progress =
    // -p takes no value: `-p a b` must not read a as a mode (issue 14 item 6).
    options.progress ?? (options.p ? 'always' : 'auto');
  await runCommand({ program: 'qcow2', json: options.json, progress }, async (context) => {
    const { compareCommand } = await import('./compare-run.js');
    return compareCommand(a, b, options, context);
  });
}
