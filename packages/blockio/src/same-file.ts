import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { BlockIoError } from './errors.js';

/**
 * Refuses (`SAME_FILE`) when `output` is one of `inputs`: the same inode on the
 * same filesystem through any path, symbolic or hard link, or the same block device
 * through any device node. Writing an output over its own input destroys the input
 * (a rename replaces it, an in-place write overwrites what is still to be read), so
 * every tool with an input and an output calls this before it writes. An output
 * that does not exist yet, and an input that cannot be inspected (the open that
 * follows reports it), are never the same file.
 */
export async function refuseSameFile(output: string, inputs: readonly string[]): Promise<void> {
  const outputStat = await stat(output).catch(() => undefined);
  if (outputStat === undefined) return;
  for (const input of inputs) {
    const inputStat = await stat(input).catch(() => undefined);
    if (inputStat !== undefined && isSameFile(outputStat, inputStat)) {
      const through = input === output ? '' : ` (${input})`;
      throw new BlockIoError(
        'SAME_FILE',
        `the output is the same file as the input${through}: writing it would destroy the input; choose another output`,
        { path: output },
      );
    }
  }
}

function isSameFile(a: Stats, b: Stats): boolean {
  if (a.isBlockDevice() && b.isBlockDevice()) return a.rdev === b.rdev;
  return a.dev === b.dev && a.ino === b.ino;
}
