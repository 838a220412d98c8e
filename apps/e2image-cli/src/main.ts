import { setFlagsFromString } from 'node:v8';
import { Command, Option } from 'commander';
import type { CliOptions } from './options.js';

// Our jobs are short (0.2-1 s on an 8 GiB filesystem), and V8's optimising
// compiler, running on the second core, cost a quarter of the CPU time of -Q:
// it compiled functions that had run a few milliseconds. A 16x budget before a
// function is optimised keeps that for code that stays hot (a long -a or a huge
// filesystem still gets optimised code a few ms later). Measured on the bench
// input (CPU, interleaved medians): -Q 0.76 -> 0.53 s, -r 0.73 -> 0.54 s,
// QCOW2 -> raw 0.56 -> 0.39 s; a 1.2 GB -ra copy is not slower.
// Node 20's V8 (11) only: V8 12 (Node 22+) tiers up by invocation counts instead and
// prints "unrecognized flag" on stderr for this one, on every run.
if (Number.parseInt(process.versions.v8, 10) <= 11)
  setFlagsFromString('--interrupt-budget=1081344');

/** Kept equal to package.json's version (a test checks). */
const VERSION = '0.1.0';

const EXAMPLES = `
Examples:
  # Raw sparse image of the metadata (same bytes as e2fsprogs' e2image -r):
  x-e2image -r /dev/sdb1 sdb1.raw

  # The same as a QCOW2 file (not sparse, safe to copy and compress):
  x-e2image -Q /dev/sdb1 sdb1.qcow2

  # Scramble directory names before sending the image to someone:
  x-e2image -rs /dev/sdb1 sdb1-scrambled.raw

  # Stream a raw image (zeros for holes) into a compressor:
  x-e2image -r /dev/sdb1 - | zstd > sdb1.raw.zst

  # Turn any QCOW2 image back into a raw file:
  x-e2image -r sdb1.qcow2 sdb1.raw

  # Metadata of the filesystem in partition 1 of a QCOW2 disk image:
  x-e2image -r -o 1048576 disk.qcow2 part1.raw

  # Use the backup superblock at block 32768 of a 4 KiB filesystem:
  x-e2image -r -b 32768 -B 4096 /dev/sdb1 sdb1.raw

  # e2image's classic format, and putting its inode tables back:
  x-e2image /dev/sdb1 sdb1.e2i
  x-e2image -I /dev/sdb1 sdb1.e2i

  # Clone a filesystem with all data into a partition of a disk image:
  x-e2image -ra -O 1048576 /dev/sdb1 disk.img

  # Machine-readable summary (JSON Lines: progress events, then a summary):
  x-e2image -r --json /dev/sdb1 sdb1.raw

Exit codes: 0 success, 1 failure, 2 usage error, 130/143 interrupted.
See the README for every option.`;

const program = new Command('x-e2image')
  .description(
    "Save the metadata of an ext2/3/4 filesystem to a raw, QCOW2 or e2image file, as e2fsprogs' e2image does.\n" +
      'The source may be a block device, a raw image or a QCOW2 image (detected by its magic).',
  )
  .usage(
    '[-r|-Q] [-afnps] [-b superblock -B blocksize] [-c] [-o src_offset] [-O dest_offset] source image-file',
  )
  .argument(
    '<source>',
    'device, raw image or QCOW2 image holding the filesystem (with -I: the device to write)',
  )
  .argument('[image-file]', 'output file, or "-" for stdout (raw only)')
  .option('-r', 'raw image: every metadata block at its own offset, sparse')
  .option('-Q', 'QCOW2 image')
  .option('-a', 'include the contents of regular files too (-r/-Q)')
  .option('-s', 'scramble directory entry names (and wipe unused directory space)')
  .option('-p', 'show progress (same as --progress=always)')
  .option('-c', 'compare each block with the output first and skip writes that change nothing (-r)')
  .option('-n', 'no writes: report the blocks that would be written')
  .option('-f', 'work on a filesystem mounted read-write; with -I, write to a busy target')
  .option(
    '-I',
    'install: write the inode tables and bitmaps of a normal image (image-file) back onto source',
  )
  .option('-b <superblock>', 'use the backup superblock at this block number (needs -B)')
  .option('-B <blocksize>', 'the block size to find the superblock with')
  .option(
    '-o <src_offset>',
    'the filesystem starts this many bytes into the source (-r); 1048576, 1M, 0x100000',
  )
  .option(
    '-O <dest_offset>',
    'write the image this many bytes into the output (-r); units as for -o',
  )
  .addOption(
    new Option(
      '--backing <policy>',
      'may a QCOW2 source open the backing file it names? allow (as qemu-img), deny, or ignore it',
    )
      .choices(['allow', 'deny', 'ignore'])
      .default('allow'),
  )
  .option(
    '--force',
    'replace an existing output file, or write to a block device (e2image overwrites without asking)',
  )
  .option(
    '--no-sync',
    'do not fsync the new output file before renaming it into place (faster; not crash-safe)',
  )
  .option('--json', 'print progress and a summary as JSON Lines on stdout')
  .addOption(
    new Option('--progress <mode>', 'progress bar on stderr').choices(['auto', 'always', 'never']),
  )
  .addHelpText('after', EXAMPLES)
  .version(VERSION, '-V, --version')
  // Parser errors are thrown, not printed: exitOnParserError prints them as one line
  // (and a JSON object with --json) and exits 2.
  .exitOverride()
  .configureOutput({ outputError: () => {} })
  // An empty argument ('' from an unset variable) is a usage error before any work.
  .hook('preAction', async (_program, command) => {
    const { refuseEmptyArguments } = await import('@x/blockio/cli');
    refuseEmptyArguments(command);
  })
  .action(async (source: string, image: string | undefined, options: CliOptions) => {
    // Loaded only once a job runs: --help and usage errors need nothing but commander.
    const { runCommand } = await import('@x/blockio/cli');
    await runCommand(
      {
        program: 'x-e2image',
        json: options.json,
        // The README promises a [CODE] at the end of every error line.
        showCodes: true,
        progress: options.progress ?? (options.p ? 'always' : 'auto'),
        optionFlags: { overwrite: '--force' },
      },
      async (context) => {
        const { planFromArguments } = await import('./options.js');
        const plan = planFromArguments(image === undefined ? [source] : [source, image], options);
        const { execute } = await import('./run.js');
        return execute(plan, context);
      },
    );
  });

await program.parseAsync(process.argv).catch(async (error: unknown) => {
  // --help and --version: done. Exit now, before a reader that went away (`--help | head`)
  // turns the help text's EPIPE into an unhandled 'error' event while blockio loads.
  if ((error as { exitCode?: unknown }).exitCode === 0) process.exit(0);
  const { exitOnParserError } = await import('@x/blockio/cli');
  exitOnParserError('x-e2image', error);
});
