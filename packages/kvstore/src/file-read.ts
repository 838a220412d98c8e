import type { FileHandle } from 'node:fs/promises';
import { fromSystemError } from '@x/blockio';
import { kvError } from './errors.js';

/**
 * Reads exactly `length` bytes at `offset`, or throws TRUNCATED naming the structure
 * that needed them: every read of this package goes through here.
 */
export async function readExact(
  handle: FileHandle,
  path: string,
  offset: number,
  length: number,
  structure: string,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, done, length - done, offset + done));
    } catch (error) {
      throw fromSystemError(error, `read ${structure}`, { path, offset: offset + done, structure });
    }
    if (bytesRead === 0) {
      throw kvError(
        'TRUNCATED',
        `the file ends at ${offset + done}, but the ${structure} needs ${length} bytes from ${offset}`,
        { path, offset: offset + done, structure },
      );
    }
    done += bytesRead;
  }
  return buffer;
}
