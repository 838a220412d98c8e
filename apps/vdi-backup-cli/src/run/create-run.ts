import { type CommandContext, UsageError } from '@x/blockio/cli';
import { createBackup, openBackupSources } from '@x/vdi-backup';
import type { CreateOptions } from '../commands/create.js';
import { formatBytes, outputStream, parseObjectSize, say } from './common.js';

export async function runCreate(
  source: string | undefined,
  options: CreateOptions,
  context: CommandContext,
): Promise<void> {
  if (options.from === undefined) throw new UsageError('-F <from> is required');
  if (source === undefined && options.snapshot === undefined) {
    throw new UsageError(
      'two images need -F <from> and -s <to> (a QCOW2 image or sheepdog:// source goes last)',
    );
  }
  const objectSizeGiven = options.objectSize !== undefined;
  let objectSize = parseObjectSize(options.objectSize);
  const output = outputStream(options.output, context.json);
  const started = performance.now();
  const sources = await openBackupSources({
    from: options.from,
    to: options.snapshot,
    source,
    backingPolicy: options.backing,
  });
  try {
    if (sources.objectSize !== undefined) {
      if (objectSizeGiven && sources.objectSize !== objectSize) {
        throw new UsageError(
          `--object-size ${objectSize} differs from the VDI's object size ${sources.objectSize}`,
        );
      }
      objectSize = sources.objectSize;
    }
    const result = await createBackup(sources.from, sources.to, {
      output,
      objectSize,
      overwrite: options.force ?? false,
      sync: options.sync,
      sharedRanges: sources.sharedRanges,
      hostFiles: sources.hostFiles,
      readSize: sources.readSize,
      // The files read: two raw images, or the QCOW2 image whose snapshots -F/-s name
      // (a sheepdog:// URL is no file, so never matches).
      inputs:
        source === undefined
          ? [options.from, options.snapshot].filter((input): input is string => input !== undefined)
          : [source],
      signal: context.signal,
      onProgress: context.progress.listener,
    });
    const elapsedMs = Math.round(performance.now() - started);
    if (context.json) {
      context.printJson({
        command: 'create',
        source: sources.kind,
        output: options.output,
        'object-size': result.objectSize,
        objects: result.objects,
        'objects-compared': result.objectsCompared,
        'objects-skipped-unallocated': result.objectsSkippedUnallocated,
        'objects-skipped-shared': result.objectsSkippedShared,
        records: result.records,
        'bytes-read': result.bytesRead,
        'bytes-skipped': result.bytesSkipped,
        'data-bytes': result.dataBytes,
        'bytes-written': result.streamBytes,
        elapsedMs,
      });
      return;
    }
    const toStdout = typeof output === 'string';
    say(
      toStdout,
      `${result.records} records, ${formatBytes(result.dataBytes)} of changed data in ${result.objects} objects of ${formatBytes(result.objectSize)}`,
    );
    say(
      toStdout,
      `read ${formatBytes(result.bytesRead)}; skipped unread ${formatBytes(result.bytesSkipped)} (${result.objectsSkippedUnallocated} objects unallocated on both sides, ${result.objectsSkippedShared} shared)`,
    );
    say(toStdout, `wrote ${formatBytes(result.streamBytes)} in ${elapsedMs} ms`);
  } finally {
    await sources.close();
  }
}
