import type { CommandContext } from '@x/blockio/cli';
import { inspectBackup, spoolToTempFile } from '@x/vdi-backup';
import type { InspectOptions } from '../commands/inspect.js';
import { formatBytes, inputStream, parseObjectSize } from './common.js';

export async function runInspect(
  file: string,
  options: InspectOptions,
  context: CommandContext,
): Promise<void> {
  const objectSize = parseObjectSize(options.objectSize);
  const input = inputStream(file, '<file>');
  const spooled =
    typeof input === 'string'
      ? undefined
      : await spoolToTempFile(input, { signal: context.signal });
  try {
    const records: Array<Record<string, number>> = [];
    const inspection = await inspectBackup(spooled?.path ?? (input as string), {
      objectSize,
      onRecord: options.records
        ? (record) => {
            records.push({
              idx: record.idx,
              offset: record.offset,
              length: record.length,
              'stream-offset': record.headerOffset,
              ...(record.reserved !== 0 ? { reserved: record.reserved } : {}),
            });
          }
        : undefined,
    });
    const changed = inspection.changedObjects
      .map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`))
      .join(',');
    if (context.json) {
      context.printJson({
        command: 'inspect',
        file,
        layout: inspection.layout,
        'object-size': inspection.objectSize,
        'stream-bytes': inspection.streamBytes,
        records: options.records ? records : inspection.records,
        'record-count': inspection.records,
        'data-bytes': inspection.dataBytes,
        objects: inspection.objects,
        'changed-objects': inspection.changedObjects,
        'minimum-image-size': inspection.minimumImageSize,
        'reserved-nonzero': inspection.reservedNonZero,
      });
      return;
    }
    context.print(
      `layout:             ${inspection.layout === 'dog' ? 'dog (v0.5.0 and later)' : '2012 (16-byte header, never released)'}`,
    );
    context.print(`stream:             ${formatBytes(inspection.streamBytes)}`);
    context.print(`records:            ${inspection.records}`);
    context.print(`data:               ${formatBytes(inspection.dataBytes)}`);
    context.print(
      `objects changed:    ${inspection.objects} of ${formatBytes(inspection.objectSize)}: ${changed || '(none)'}`,
    );
    context.print(`fits a disk of:     ${formatBytes(inspection.minimumImageSize)} or more`);
    if (inspection.reservedNonZero > 0) {
      context.warn(
        `${inspection.reservedNonZero} records have a non-zero reserved field (dog ignores it)`,
      );
    }
    if (options.records) {
      context.print('');
      context.print(
        `${'idx'.padStart(10)} ${'offset'.padStart(10)} ${'length'.padStart(10)} ${'at'.padStart(14)}`,
      );
      for (const record of records) {
        context.print(
          `${String(record.idx).padStart(10)} ${String(record.offset).padStart(10)} ${String(record.length).padStart(10)} ${String(record['stream-offset']).padStart(14)}`,
        );
      }
    }
  } finally {
    await spooled?.remove();
  }
}
