import { type CommandContext, sizeOption, UsageError } from '@x/blockio/cli';
import { resizeQcow2 } from '@x/qcow2/convert';
import type { ResizeCliOptions } from './resize.js';

export async function resizeImage(
  image: string,
  sizeText: string,
  options: ResizeCliOptions,
  context: CommandContext,
): Promise<void> {
  const sign = sizeText.startsWith('+') ? 1 : sizeText.startsWith('-') ? -1 : 0;
  const amount = sizeOption('size')(sign === 0 ? sizeText : sizeText.slice(1));
  const newSize = (oldSize: number) => {
    const size = oldSize + sign * amount;
    if (sign === 0) return amount;
    if (size < 0)
      throw new UsageError(`${sizeText} would make the size negative (it is ${oldSize})`);
    return size;
  };
  const result = await resizeQcow2(image, newSize, {
    shrink: options.shrink ?? false,
    preallocation: options.preallocation,
    backingPolicy: options.backing,
  });
  if (context.json) {
    context.printJson({
      filename: image,
      'old-size': result.oldSize,
      'new-size': result.newSize,
      'actual-size': result.fileSize,
    });
  } else if (!options.quiet) {
    context.print('Image resized.');
  }
}
