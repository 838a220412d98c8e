import { type CommandContext, sizeOption } from '@x/blockio/cli';
import { spoolToTempFile, verifyBackup } from '@x/vdi-backup';
import type { VerifyOptions } from '../commands/verify.js';
import { inputStream, parseObjectSize } from './common.js';

export async function runVerify(
  file: string,
  options: VerifyOptions,
  context: CommandContext,
): Promise<void> {
  const objectSize = parseObjectSize(options.objectSize);
  const imageSize = options.size === undefined ? undefined : sizeOption('--size')(options.size);
  const input = inputStream(file, '<file>');
  const spooled =
    typeof input === 'string'
      ? undefined
      : await spoolToTempFile(input, { signal: context.signal });
  try {
    const summary = await verifyBackup(spooled?.path ?? (input as string), {
      objectSize,
      imageSize,
    });
    if (context.json) {
      context.printJson({
        command: 'verify',
        file,
        ok: true,
        layout: summary.layout,
        'object-size': summary.objectSize,
        'image-size': imageSize ?? null,
        records: summary.records,
        'data-bytes': summary.dataBytes,
        'stream-bytes': summary.streamBytes,
        'minimum-image-size': summary.minimumImageSize,
      });
      return;
    }
    context.print(
      `${file}: ok — ${summary.records} records, ${summary.dataBytes} data bytes, fits ${objectSize}-byte objects${imageSize === undefined ? '' : ` and a ${imageSize}-byte disk`}`,
    );
  } finally {
    await spooled?.remove();
  }
}
