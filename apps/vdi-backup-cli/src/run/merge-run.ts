import { type CommandContext, UsageError } from '@x/blockio/cli';
import { mergeBackups } from '@x/vdi-backup';
import type { MergeOptions } from '../commands/merge.js';
import { formatBytes, outputStream, parseObjectSize, say } from './common.js';

export async function runMerge(
  streams: string[],
  options: MergeOptions,
  context: CommandContext,
): Promise<void> {
  if (streams.length < 2) throw new UsageError('merge needs at least two streams');
  if (streams.includes('-')) throw new UsageError('merge reads files, not standard input');
  const objectSize = parseObjectSize(options.objectSize);
  const output = outputStream(options.output, context.json);
  const started = performance.now();
  const result = await mergeBackups(streams, {
    output,
    objectSize,
    overwrite: options.force ?? false,
    sync: options.sync,
    signal: context.signal,
    onProgress: context.progress.listener,
  });
  const elapsedMs = Math.round(performance.now() - started);
  if (context.json) {
    context.printJson({
      command: 'merge',
      inputs: result.inputs,
      'records-in': result.recordsIn,
      records: result.records,
      'data-bytes': result.dataBytes,
      'bytes-written': result.streamBytes,
      elapsedMs,
    });
    return;
  }
  say(
    typeof output === 'string',
    `merged ${result.inputs} streams (${result.recordsIn} records) into ${result.records} records, ${formatBytes(result.dataBytes)} of data, ${formatBytes(result.streamBytes)} written in ${elapsedMs} ms`,
  );
}
