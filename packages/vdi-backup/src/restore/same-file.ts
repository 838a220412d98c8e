import { stat } from 'node:fs/promises';
import { BlockIoError } from '@x/blockio';

/** Refuses an output that is the same file as one of the inputs (a link, another name). */
export async function refuseSameFile(output: string, inputs: readonly string[]): Promise<void> {
  const target = await stat(output).catch(() => undefined);
  if (!target) return;
  for (const input of inputs) {
    const source = await stat(input).catch(() => undefined);
    if (source && source.dev === target.dev && source.ino === target.ino) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `${output} and ${input} are the same file; the output must be another file`,
        { path: output },
      );
    }
  }
}
