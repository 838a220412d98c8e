/** What a restore read from tape: the tests and the summary count these. */
export interface TapeReadStats {
  /** Tape files opened (read_next_file calls that returned a file). */
  tapeFilesOpened: number;
  /** Bytes read from the host files behind the tapes (whole blocks). */
  bytesRead: number;
  /** Chunk archive entries decoded (wanted or not). */
  chunkEntriesDecoded: number;
}

export function newTapeReadStats(): TapeReadStats {
  return { tapeFilesOpened: 0, bytesRead: 0, chunkEntriesDecoded: 0 };
}
