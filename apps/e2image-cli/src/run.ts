import { stat } from 'node:fs/promises';
import {
  type BlockDevice,
  BlockIoError,
  FileDevice,
  formatSize,
  optionRemedy,
  refuseSameFile,
  SliceDevice,
} from '@x/blockio';
import type { CommandContext } from '@x/blockio/cli';
import {
  CompareBeforeWriteDevice,
  collectMetadata,
  DryRunDevice,
  deviceUse,
  E2imageError,
  type E2imageWarning,
  Filesystem,
  filesystemBytes,
  installNormalImageFile,
  moveFilesystem,
  type OpenedSource,
  openSource,
  type RawImageResult,
  streamDevice,
  streamRawImage,
  writeNormalImageFile,
  writeQcow2Image,
  writeQcow2ToRawFile,
  writeRawImage,
  writeRawImageFile,
} from '@x/e2image';
import type { Plan } from './options.js';

type ImagePlan = Extract<Plan, { kind: 'image' }>;

const SHOWN_WARNINGS = 20;

/** Runs a plan; returns the exit code. Everything heavy is loaded here, lazily. */
export async function execute(plan: Plan, context: CommandContext): Promise<number> {
  const started = performance.now();
  const warnings = warningPrinter(context);
  let summary: Record<string, unknown>;
  // An output that is the source (through any path or link) would destroy it: a
  // new file renamed over it, or blocks written over what is still to be read.
  // Moving a filesystem within one file is the move plan (-ra -O with one file).
  if (plan.kind === 'install') await refuseSameFile(plan.device, [plan.image]);
  if (plan.kind === 'image' && plan.output !== '-') {
    await refuseSameFile(plan.output, [plan.source]);
    await refuseExistingOutput(plan);
  }
  if (plan.kind === 'install') {
    const result = await installNormalImageFile(plan.device, plan.image, {
      force: plan.force,
      signal: context.signal,
      onProgress: context.progress.listener,
    });
    summary = { mode: 'install', device: plan.device, image: plan.image, ...result };
  } else if (plan.kind === 'move') {
    summary = await move(plan, context, warnings.listener);
  } else {
    summary = await image(plan, context, warnings.listener);
  }
  warnings.finish();
  const elapsedMs = Math.round(performance.now() - started);
  if (context.json) {
    process.stdout.write(
      `${JSON.stringify({ event: 'summary', ...summary, warnings: warnings.count, elapsedMs })}\n`,
    );
  } else if (plan.kind === 'image' && plan.output !== '-' && !plan.dryRun) {
    const bytes =
      typeof summary.bytesWritten === 'number'
        ? ` (${formatSize(summary.bytesWritten)} written)`
        : '';
    context.progress.close(); // the bar is redrawn in place: start a line of our own
    process.stderr.write(
      `x-e2image: ${summary.mode} image of ${plan.source} in ${plan.output}${bytes}, ${(elapsedMs / 1000).toFixed(2)} s\n`,
    );
  }
  return 0;
}

/**
 * The rule of every blockkit CLI (e2image differs: it overwrites): an existing
 * output is refused unless --force, before any work. -c and -O write into an
 * existing output in place by design (a clone refreshed, a partition of a disk
 * image); a block device is always "existing", so writing one needs --force.
 */
async function refuseExistingOutput(plan: ImagePlan): Promise<void> {
  if (plan.overwrite || plan.dryRun) return;
  const existing = await stat(plan.output).catch(() => undefined);
  if (existing === undefined) return;
  if (existing.isBlockDevice()) {
    throw new BlockIoError(
      'EEXIST',
      `is a block device: writing the image replaces what it holds (${optionRemedy('overwrite')} to write it)`,
      { path: plan.output },
    );
  }
  const inPlace = plan.mode === 'raw' && (plan.check || plan.destinationOffset > 0);
  if (!inPlace) {
    throw new BlockIoError(
      'EEXIST',
      `output file already exists (${optionRemedy('overwrite')} to replace it)`,
      { path: plan.output },
    );
  }
}

function warningPrinter(context: CommandContext) {
  let count = 0;
  return {
    listener: (warning: E2imageWarning) => {
      count++;
      if (count > SHOWN_WARNINGS) return;
      context.warn(warning.message);
      // --json: stdout is JSON Lines, so a warning is an event like progress.
      if (context.json)
        process.stdout.write(`${JSON.stringify({ event: 'warning', ...warning })}\n`);
    },
    finish: () => {
      if (count > SHOWN_WARNINGS) context.warn(`… and ${count - SHOWN_WARNINGS} more warnings`);
    },
    get count() {
      return count;
    },
  };
}

/** e2image refuses -r/-Q on a filesystem mounted read-write, unless -f. */
async function checkNotMountedReadWrite(source: string, force: boolean): Promise<void> {
  if (force) return;
  const use = await deviceUse(source);
  const writable = use.mounts.find((mount) => !mount.readOnly);
  if (writable) {
    throw new E2imageError(
      'TARGET_BUSY',
      `${source} is mounted read-write on ${writable.mountPoint}: an image of it would be inconsistent and not useful for debugging; use -f if you really want that`,
      { path: source },
    );
  }
}

async function image(
  plan: ImagePlan,
  context: CommandContext,
  onWarning: (warning: E2imageWarning) => void,
): Promise<Record<string, unknown>> {
  if (plan.mode !== 'normal') await checkNotMountedReadWrite(plan.source, plan.force);
  const source = await openSource(plan.source, {
    offset: plan.sourceOffset,
    backingPolicy: plan.backingPolicy,
  });
  try {
    if (source.qcow2 && isPlainRaw(plan)) return await convert(source.qcow2, plan, context);
    const fs = await Filesystem.open(source.device, {
      superblock: plan.superblock,
      blockSize: plan.blockSize,
      onWarning,
    });
    const base = {
      mode: plan.mode,
      source: plan.source,
      output: plan.output,
      blockSize: fs.blockSize,
    };
    if (plan.mode === 'normal') {
      if (plan.dryRun) return { ...base, dryRun: true };
      const result = await writeNormalImageFile(fs, plan.output, {
        deviceName: plan.source,
        overwrite: plan.overwrite,
        signal: context.signal,
        onProgress: context.progress.listener,
      });
      return { ...base, imageSize: result.imageSize, bytesWritten: result.bytesWritten };
    }
    if (plan.mode === 'qcow2') {
      if (plan.dryRun) return { ...base, dryRun: true };
      const result = await writeQcow2Image(fs, plan.output, {
        overwrite: plan.overwrite,
        allData: plan.allData,
        sync: plan.sync,
        scramble: plan.scramble,
        signal: context.signal,
        onProgress: context.progress.listener,
      });
      return {
        ...base,
        ...summarise(result),
        fileSize: result.fileSize,
        checksumFailures: fs.checksums.failed,
      };
    }
    const result = await raw(fs, plan, context);
    return { ...base, ...result, checksumFailures: fs.checksums.failed };
  } finally {
    await source.close();
  }
}

async function raw(
  fs: Filesystem,
  plan: ImagePlan,
  context: CommandContext,
): Promise<Record<string, unknown>> {
  const common = {
    allData: plan.allData,
    scramble: plan.scramble,
    signal: context.signal,
    onProgress: context.progress.listener,
  };
  if (plan.dryRun) {
    const target = new DryRunDevice('dry run', fs.blockSize, (block) =>
      context.print(`Writing block ${block}`),
    );
    const result = await writeRawImage(fs, target, { ...common, targetIsZeroed: true });
    return { ...summarise(result), dryRun: true };
  }
  if (plan.output === '-') {
    process.stdout.on('error', () => {});
    return summarise(await streamRawImage(fs, process.stdout, common));
  }
  const existing = await stat(plan.output).catch(() => undefined);
  const outputIsBlockDevice = existing?.isBlockDevice() ?? false;
  // e2image writes raw images in place; we do too where that matters (a device,
  // a clone being refreshed with -c, a partition offset inside a disk image) and
  // otherwise build a new file that replaces the old one only when complete.
  const inPlace =
    existing !== undefined && (outputIsBlockDevice || plan.check || plan.destinationOffset > 0);
  if (!inPlace) {
    return summarise(
      await writeRawImageFile(fs, plan.output, {
        ...common,
        overwrite: plan.overwrite,
        destinationOffset: plan.destinationOffset,
        sync: plan.sync,
      }),
    );
  }
  const output = await FileDevice.open(plan.output, {
    writable: true,
    zeroExtends: !outputIsBlockDevice,
    // A device that is mounted or held (a RAID member, a device-mapper table) is refused.
    exclusive: outputIsBlockDevice,
  });
  try {
    let target: BlockDevice =
      plan.destinationOffset > 0 ? new SliceDevice(output, plan.destinationOffset) : output;
    const compare = plan.check ? new CompareBeforeWriteDevice(target, fs.blockSize) : undefined;
    if (compare) target = compare;
    const metadata = await collectMetadata(fs, {
      allData: plan.allData,
      outputIsBlockDevice,
      signal: context.signal,
    });
    const result = await writeRawImage(fs, target, { ...common, metadata, targetIsZeroed: false });
    await output.flush();
    if (compare)
      context.print(`${compare.skippedBlocks} blocks already contained the data to be copied`);
    const summary = summarise(result);
    if (compare) summary.bytesWritten = compare.writtenBlocks * fs.blockSize;
    return { ...summary, inPlace: true, skippedBlocks: compare?.skippedBlocks };
  } finally {
    await output.close();
  }
}

/**
 * -r alone on a QCOW2 source converts the whole image (e2image -r image.qcow2
 * out.raw); any of -a, -s, -b, -o means "the filesystem inside it".
 */
function isPlainRaw(plan: ImagePlan): boolean {
  return (
    plan.mode === 'raw' &&
    !plan.allData &&
    !plan.scramble &&
    plan.superblock === undefined &&
    !plan.sourceOffsetGiven
  );
}

async function convert(
  device: NonNullable<OpenedSource['qcow2']>,
  plan: ImagePlan,
  context: CommandContext,
): Promise<Record<string, unknown>> {
  const base = {
    mode: 'qcow2-to-raw',
    source: plan.source,
    output: plan.output,
    imageSize: device.size,
  };
  if (plan.dryRun) return { ...base, dryRun: true };
  if (plan.output === '-') {
    process.stdout.on('error', () => {});
    const result = await streamDevice(device, process.stdout, {
      signal: context.signal,
      onProgress: context.progress.listener,
    });
    return { ...base, bytesWritten: result.bytesWritten };
  }
  const result = await writeQcow2ToRawFile(device, plan.output, {
    overwrite: plan.overwrite,
    destinationOffset: plan.destinationOffset,
    sync: plan.sync,
    signal: context.signal,
    onProgress: context.progress.listener,
  });
  return { ...base, bytesTotal: result.bytesTotal, bytesWritten: result.bytesWritten };
}

function summarise(result: RawImageResult): Record<string, unknown> {
  return {
    blocks: result.blocks,
    bytesTotal: result.bytesTotal,
    bytesWritten: result.bytesWritten,
    imageSize: result.imageSize,
  };
}

async function move(
  plan: Extract<Plan, { kind: 'move' }>,
  context: CommandContext,
  onWarning: (warning: E2imageWarning) => void,
): Promise<Record<string, unknown>> {
  await checkNotMountedReadWrite(plan.file, plan.force);
  const device = await FileDevice.open(plan.file, { writable: !plan.dryRun });
  try {
    const fs = await Filesystem.open(new SliceDevice(device, plan.sourceOffset), {
      superblock: plan.superblock,
      blockSize: plan.blockSize,
      onWarning,
    });
    const metadata = await collectMetadata(fs, { allData: true, signal: context.signal });
    const ranges = [...metadata.extents];
    if (plan.dryRun) {
      for (const range of ranges) {
        for (let at = range.offset; at < range.offset + range.length; at += fs.blockSize) {
          context.print(`Writing block ${at / fs.blockSize}`);
        }
      }
      return { mode: 'move', dryRun: true, blocks: metadata.blockCount };
    }
    const end = plan.destinationOffset + filesystemBytes(fs);
    if (device.size < end) {
      if (device.isBlockDevice) {
        throw new E2imageError(
          'TRUNCATED',
          `moving to ${plan.destinationOffset} needs ${end} bytes; the device has ${device.size}`,
          {
            path: plan.file,
          },
        );
      }
      await device.truncate(end);
    }
    context.warn(
      'moving the filesystem in place: do not interrupt (a second Ctrl-C stops at once and leaves it half moved)',
    );
    const result = await moveFilesystem(device, ranges, plan.sourceOffset, plan.destinationOffset, {
      onProgress: context.progress.listener,
    });
    return { mode: 'move', blocks: metadata.blockCount, bytesMoved: result.bytesMoved };
  } finally {
    await device.close();
  }
}
