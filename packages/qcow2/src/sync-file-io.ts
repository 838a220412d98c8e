/** node:fs's readSync or writeSync, in the positional form. */
type PositionalSync = (
  fd: number,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
) => number;

/**
 * Positional synchronous reads and writes (node:fs's readSync and writeSync), passed
 * into code that runs on worker threads as source text and so cannot import them —
 * and that tests drive with failing stand-ins.
 */
export interface SyncFileIo {
  readSync: PositionalSync;
  writeSync: PositionalSync;
}
