import type { Qcow2WritePathFactory } from './open-options.js';

/**
 * The write path `openQcow2(path, { writable: true })` uses when the caller passes none.
 * The writer (and its deflate dependency) is imported on the first writable open, so
 * read-only users such as `qcow2 convert -O raw` do not load it at start-up.
 */
export const defaultWritePathFactory: Qcow2WritePathFactory | undefined = async (image) => {
  const { Qcow2Writer } = await import('../write/writer.js');
  return Qcow2Writer.open(image);
};
