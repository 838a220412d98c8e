import { type FileHandle, open } from 'node:fs/promises';
import { fromSystemError } from '@x/blockio';
import { kvError } from './errors.js';

/** Opens a file of the store for reading only: 'r' never creates and never writes. */
export async function openReadOnly(path: string, structure: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw kvError(
        'MISSING_FILE',
        `the ${structure} is not there`,
        { path, offset: 0, structure },
        error,
      );
    }
    throw fromSystemError(error, `open ${structure}`, { path, structure });
  }
}
