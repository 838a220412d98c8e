import { BlockIoError } from '@x/blockio';

/**
 * A backing file that cannot be opened (missing, not readable, not a file) is
 * reported as the backing file of the image that names it: "cannot open for
 * reading" alone does not say why that file was wanted. Damage inside a backing
 * image already names that image and passes through unchanged.
 */
export function backingOpenError(error: unknown, path: string, imagePath: string): unknown {
  if (!(error instanceof BlockIoError) || error.path !== path) return error;
  if (!['ENOENT', 'EACCES', 'EISDIR', 'NOT_A_FILE', 'EIO'].includes(error.code)) return error;
  const reason = error.message.replace(/^cannot open for reading: /, '');
  return new BlockIoError(error.code, `cannot open the backing file of ${imagePath}: ${reason}`, {
    path,
    structure: 'backing file',
    cause: error,
  });
}
