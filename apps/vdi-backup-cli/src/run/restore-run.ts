import { type CommandContext, UsageError } from '@x/blockio/cli';
import { type RestoreTarget, restoreBackup, targetKind } from '@x/vdi-backup';
import type { RestoreOptions } from '../commands/restore.js';
import { formatBytes, inputStream, parseObjectSize } from './common.js';

export async function runRestore(
  target: string,
  options: RestoreOptions,
  context: CommandContext,
): Promise<void> {
  const objectSize = parseObjectSize(options.objectSize);
  const kind = await targetKind(target);
  if (options.as !== undefined && kind !== 'qcow2') {
    throw new UsageError('--as names a new QCOW2 snapshot; the target is not a QCOW2 image');
  }
  const spec: RestoreTarget =
    kind === 'raw'
      ? {
          type: 'raw',
          base: options.snapshot,
          output: target,
          overwrite: options.force ?? false,
          sync: options.sync,
        }
      : kind === 'qcow2'
        ? {
            type: 'qcow2',
            image: target,
            base: options.snapshot,
            as: options.as,
            backingPolicy: options.backing,
          }
        : {
            type: 'sheepdog',
            url: target,
            snapshot: options.snapshot,
            discardWorkingChanges: options.force ?? false,
          };
  const stream = inputStream(options.input, '-i');
  const started = performance.now();
  const result = await restoreBackup(stream, spec, {
    objectSize: options.objectSize === undefined && kind === 'sheepdog' ? undefined : objectSize,
    signal: context.signal,
    onProgress: context.progress.listener,
  });
  const elapsedMs = Math.round(performance.now() - started);
  if (context.json) {
    context.printJson({
      command: 'restore',
      target: kind,
      ...result.describe,
      layout: result.layout,
      records: result.records,
      'stream-bytes': result.streamBytes,
      'bytes-written': result.bytesWritten,
      elapsedMs,
    });
    return;
  }
  context.print(
    `applied ${result.records} records (${formatBytes(result.bytesWritten)}) from a ${formatBytes(result.streamBytes)} stream in ${elapsedMs} ms`,
  );
  for (const [key, value] of Object.entries(result.describe ?? {})) {
    context.print(`${key}: ${value}`);
  }
}
