/**
 * Positional synchronous reads and writes (node:fs's readSync and writeSync), passed
 * into code that runs on worker threads as source text and so cannot import them —
 * and that tests drive with failing stand-ins.
 */
export interface SyncFileIo {
  readSync(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): number;
  writeSync(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): number;
}
