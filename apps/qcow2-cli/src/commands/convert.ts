import { type Command, Option } from 'commander';
import { addExamples, backingOption } from './read-options.js';

interface ConvertOptions {
  outputFormat: 'raw' | 'qcow2';
  format?: 'raw' | 'qcow2';
  compress?: boolean;
  snapshot?: string;
  clusterSize?: string;
  /** -B: the output's backing file (qemu-img convert -B). */
  backingFile?: string;
  /** -F: its format (qemu-img convert -F). */
  backingFormat?: 'raw' | 'qcow2';
  options: string[];
  /** -p: a progress bar even when stderr is not a TTY. */
  p?: boolean;
  progress?: string;
  force?: boolean;
  sync: boolean;
  json?: boolean;
  salvage?: boolean;
  backing: 'allow' | 'deny' | 'ignore';
}

/** One zero-filled range of a salvaging convert (the library's SalvagedRange). */
interface SalvagedRange {
  guestOffset: number;
  length: number;
  reason: string;
  structure: string;
  hostOffset: number;
  path: string;
  readsAs: 'zeros' | 'unallocated';
}

interface SalvageReport {
  ranges: SalvagedRange[];
  totalBytes: number;
  truncated: boolean;
}

export function registerConvert(program: Command): void {
  const command = program
    .command('convert')
    .summary('copy an image (or one of its snapshots) to a raw or qcow2 file')
    .description(
      'Copy every guest byte of <input> (qcow2 or raw, detected by its magic) to <output>. ' +
        'Raw output is sparse: only extents holding data are read, zero blocks become holes. ' +
        'qcow2 output (-O qcow2) is compact: runs of zeros are not stored; -c compresses each cluster (deflate, or zstd with -o compression_type=zstd). ' +
        'With -B <backing> -F <format> (or -o backing_file=…,backing_fmt=…) the output names that ' +
        "backing file and holds only <input>'s top layer, as qemu-img convert -B. " +
        'The output is written as <output>.partial and renamed when complete; on error or ' +
        "Ctrl-C nothing is left behind. Output bytes equal `qemu-img convert`'s.",
    )
    .argument('<input>', 'qcow2 or raw image to read')
    .argument('<output>', 'file to create')
    .addOption(
      new Option('-O, --output-format <format>', 'output format')
        .choices(['raw', 'qcow2'])
        .default('raw'),
    )
    .addOption(
      new Option('-f, --format <format>', 'input format (default: detect)').choices([
        'raw',
        'qcow2',
      ]),
    )
    .option('-c, --compress', 'compress the output clusters (qcow2 output)')
    .option(
      '-s, --snapshot <id-or-name>',
      'convert this internal snapshot instead of the active state',
    )
    .option('--cluster-size <size>', 'cluster size of qcow2 output, e.g. 64k (512 to 2M)')
    .option(
      '-B, --backing-file <file>',
      "qcow2 output over this backing file (stored as given; relative to the output's directory): only what <input>'s top layer holds is copied, as qemu-img convert -B",
    )
    .addOption(
      new Option(
        '-F, --backing-format <format>',
        'format of the -B backing file (required with it, as qemu-img)',
      ).choices(['raw', 'qcow2']),
    )
    .option('-p', 'show progress on stderr (same as --progress always), as qemu-img convert -p')
    .option(
      '-o, --options <list>',
      "qcow2 output's creation options, as qemu-img: compat, cluster_size, refcount_bits, compression_type, extended_l2, preallocation, lazy_refcounts, backing_file, backing_fmt (repeatable)",
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .option(
      '--progress <mode>',
      'progress on stderr: auto (a bar on a TTY, the default), always or never',
    )
    .option('--force', 'replace <output> if it exists')
    .option(
      '--no-sync',
      'do not fsync the output before renaming it into place (faster; like qemu-img, a crash soon after can leave it incomplete)',
    )
    .option(
      '--salvage',
      'read a damaged image as qemu-img does (an L2 table or data past the end of the file reads as zeros) instead of refusing, and list every guest range read that way',
    )
    .option('--json', 'progress and the result as JSON lines on stdout')
    .addOption(backingOption())
    .action((input: string, output: string, options: ConvertOptions) =>
      runConvert(input, output, options),
    );
  addExamples(command, [
    'qcow2 convert disk.qcow2 disk.raw',
    'qcow2 convert -p --snapshot before-upgrade disk.qcow2 before.raw',
    'qcow2 convert -O qcow2 -c disk.raw disk.qcow2',
    'qcow2 convert -O qcow2 -c -o compression_type=zstd disk.raw disk.qcow2',
    'qcow2 convert -O qcow2 --cluster-size 2M --snapshot 1 disk.qcow2 snap1.qcow2',
    'qcow2 convert -O qcow2 -o compat=0.10,refcount_bits=16 disk.raw old-qemu.qcow2',
    'qcow2 convert -O qcow2 -o extended_l2=on,cluster_size=128k,preallocation=metadata in.raw out.qcow2',
    'qcow2 convert -O qcow2 -B base.qcow2 -F qcow2 overlay.qcow2 new-overlay.qcow2',
    'qcow2 convert -O qcow2 -o backing_file=base.raw,backing_fmt=raw disk.raw delta.qcow2',
    'qcow2 convert --salvage --json damaged.qcow2 rescued.raw',
  ]);
}

async function runConvert(input: string, output: string, options: ConvertOptions): Promise<void> {
  const { runCommand, sizeOption, UsageError } = await import('@x/blockio/cli');
  // -p takes no value (as qemu-img's): `-p in.qcow2 out.raw` must not read in.qcow2 as a mode.
  const progress = options.progress ?? (options.p ? 'always' : 'auto');
  const flags = {
    program: 'qcow2',
    json: options.json,
    progress,
    optionFlags: { overwrite: '--force' },
  };
  await runCommand(flags, async (context) => {
    if (options.format === 'raw' && options.snapshot !== undefined) {
      throw new UsageError('-s/--snapshot needs a qcow2 input; -f raw has no snapshots');
    }
    if (
      options.outputFormat === 'raw' &&
      (options.compress ||
        options.clusterSize !== undefined ||
        options.options.length > 0 ||
        options.backingFile !== undefined ||
        options.backingFormat !== undefined)
    ) {
      throw new UsageError(
        '-c, -o, -B, -F and --cluster-size apply to qcow2 output (-O qcow2) only',
      );
    }
    let clusterSize =
      options.clusterSize === undefined
        ? undefined
        : parseClusterSize(options.clusterSize, sizeOption('--cluster-size'), UsageError);
    const { convertImageOptions } = await import('./convert-options.js');
    const imageOptions = convertImageOptions(options.options, sizeOption, UsageError);
    if (imageOptions.clusterSize !== undefined) {
      if (clusterSize !== undefined && clusterSize !== imageOptions.clusterSize) {
        throw new UsageError('--cluster-size and -o cluster_size disagree');
      }
      clusterSize = imageOptions.clusterSize;
    }
    // As qemu-img: -B and -F win over -o backing_file and -o backing_fmt.
    const backingFile = options.backingFile ?? imageOptions.create.backingFile;
    const backingFormat = options.backingFormat ?? imageOptions.create.backingFormat;
    if (backingFile === undefined && backingFormat !== undefined) {
      throw new UsageError('a backing format needs a backing file (-B or -o backing_file)');
    }
    if (backingFile !== undefined && backingFormat === undefined) {
      // qemu-img 6.1 and later refuse too: probing the backing format is unsafe.
      throw new UsageError('a backing file needs its format: -F qcow2 or -F raw');
    }
    const common = {
      format: options.format,
      snapshot: options.snapshot,
      backingPolicy: options.backing,
      overwrite: options.force ?? false,
      sync: options.sync,
      salvage: options.salvage ?? false,
      signal: context.signal,
      onProgress: context.progress.listener,
    };
    const started = performance.now();
    let summary: Record<string, unknown>;
    let salvaged: SalvageReport | undefined;
    if (options.outputFormat === 'qcow2') {
      // The writer (and pako) load only for qcow2 output.
      const { convertToQcow2 } = await import('@x/qcow2/convert');
      const result = await convertToQcow2(input, output, {
        ...common,
        ...imageOptions.create,
        backingFile,
        backingFormat,
        clusterSize,
        compress: options.compress ?? false,
      });
      summary = {
        'virtual-size': result.virtualSize,
        'bytes-written': result.bytesWritten,
        'file-size': result.fileSize,
        ...(backingFile === undefined
          ? {}
          : { 'backing-filename': backingFile, 'backing-filename-format': backingFormat }),
      };
      salvaged = result.salvaged;
    } else {
      const { convertToRaw } = await import('@x/qcow2/read');
      const result = await convertToRaw(input, output, common);
      summary = {
        'virtual-size': result.virtualSize,
        'bytes-written': result.bytesWritten,
        'bytes-zero': result.bytesZero,
      };
      salvaged = result.salvaged;
    }
    if (salvaged) summary.salvaged = salvaged;
    else if (options.salvage) summary.salvaged = { ranges: [], totalBytes: 0, truncated: false };
    if (options.salvage && !context.json) {
      for (const line of salvageLines(salvaged)) process.stderr.write(`${line}\n`);
    }
    const elapsedMs = Math.round(performance.now() - started);
    if (context.json) {
      process.stdout.write(
        `${JSON.stringify({
          event: 'done',
          input,
          output,
          format: options.outputFormat,
          ...summary,
          elapsedMs,
        })}\n`,
      );
    }
  });
}

/** The human report of a salvaging convert: every zero-filled range and why. */
function salvageLines(report: SalvageReport | undefined): string[] {
  if (!report || report.ranges.length === 0) {
    return ['qcow2: salvage: nothing was zero-filled; every guest byte is the image’s'];
  }
  const hex = (value: number) => `0x${value.toString(16)}`;
  const lines = [
    `qcow2: salvage: ${report.totalBytes} guest bytes are not the image's data (${report.ranges.length} range${report.ranges.length === 1 ? '' : 's'}):`,
  ];
  for (const range of report.ranges) {
    const why =
      range.reason === 'l2-table-past-end'
        ? `L2 table at ${hex(range.hostOffset)} lies past the end of the file`
        : `data at host ${hex(range.hostOffset)} lies past the end of the file`;
    lines.push(
      `  guest ${hex(range.guestOffset)}..${hex(range.guestOffset + range.length)} (${range.length} bytes): ${why} (${range.structure}, ${range.path}); ${range.readsAs === 'zeros' ? 'written as zeros' : 'read as unallocated (backing file or zeros)'}`,
    );
  }
  if (report.truncated) lines.push('  (more ranges than listed; the total counts them all)');
  return lines;
}

/** `--cluster-size`: a size (`64k`, `2M`, bytes) that is a power of two from 512 B to 2 MiB. */
function parseClusterSize(
  text: string,
  parseSize: (text: string) => number,
  UsageError: new (message: string) => Error,
): number {
  const size = parseSize(text);
  if (size < 512 || size > 2 << 20 || (size & (size - 1)) !== 0) {
    throw new UsageError(`--cluster-size must be a power of two from 512 to 2M, not ${text}`);
  }
  return size;
}
