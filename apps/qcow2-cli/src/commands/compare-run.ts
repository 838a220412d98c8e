import { type CommandContext, printError } from '@x/blockio/cli';
import { compareImages } from '@x/qcow2/read';
import type { CompareCliOptions } from './compare.js';

/** qemu-img compare's exit codes: 0 identical, 1 different, 2 could not compare. */
const IDENTICAL = 0;
const DIFFERENT = 1;
const FAILED = 2;

export async function compareCommand(
  a: string,
  b: string,
  options: CompareCliOptions,
  context: CommandContext,
): Promise<number> {
  let result: Awaited<ReturnType<typeof compareImages>>;
  try {
    result = await compareImages(a, b, {
      a: { format: options.format, snapshot: options.snapshotA },
      b: { format: options.secondFormat, snapshot: options.snapshotB },
      strict: options.strict ?? false,
      backingPolicy: options.backing,
      signal: context.signal,
      onProgress: context.progress.listener,
    });
  } catch (error) {
    if (context.signal.aborted) throw error;
    // Any failure is 2 here (1 means "different"); runCommand would say 1.
    printError('qcow2', error, context.json);
    return FAILED;
  }
  if (context.json) {
    context.printJson({
      identical: result.identical,
      'first-difference': result.offset ?? null,
      reason: result.reason ?? null,
      'size-mismatch': result.sizeMismatch,
      images: [
        { filename: a, format: result.formats[0], 'virtual-size': result.sizes[0] },
        { filename: b, format: result.formats[1], 'virtual-size': result.sizes[1] },
      ],
    });
  } else if (!options.quiet) {
    for (const line of describe(result)) context.print(line);
  }
  return result.identical ? IDENTICAL : DIFFERENT;
}

/** qemu-img compare's lines for the result. */
function describe(result: Awaited<ReturnType<typeof compareImages>>): string[] {
  const common = Math.min(...result.sizes);
  const lines: string[] = [];
  // qemu-img warns once it has compared the common part and goes on into the rest.
  if (
    result.sizeMismatch &&
    result.reason !== 'size' &&
    (result.identical || (result.offset ?? 0) >= common)
  ) {
    lines.push('Warning: Image size mismatch!');
  }
  if (result.identical) lines.push('Images are identical.');
  else if (result.reason === 'size') lines.push('Strict mode: Image size mismatch!');
  else if (result.reason === 'allocation') {
    lines.push(`Strict mode: Offset ${result.offset} block status mismatch!`);
  } else lines.push(`Content mismatch at offset ${result.offset}!`);
  return lines;
}
