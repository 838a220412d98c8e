import type { TapeReadStats } from './stats.js';
import type { TapeFileReader } from './tape-file-reader.js';

/** What `readNextFile` found at the current position (pbs-tape.md §2 read_next_file). */
export type NextTapeFile =
  | { readonly kind: 'file'; readonly fileNumber: number; readonly reader: TapeFileReader }
  /** An empty tape file: an immediate filemark (EndOfFile). */
  | { readonly kind: 'filemark'; readonly fileNumber: number }
  /** No more recorded data on this tape (EndOfStream). */
  | { readonly kind: 'end-of-data'; readonly fileNumber: number };

/**
 * A tape drive as the restore sees it: load a tape by label, position by file number,
 * read the next file. The virtual tape drive directory and dd dumps implement it;
 * a SCSI drive can be added behind the same interface.
 */
export interface TapeDrive {
  /** For messages: what the drive is (a directory). */
  readonly name: string;
  /** Counters of what was read through this drive. */
  readonly stats: TapeReadStats;
  /** Labels of the tapes this drive can load (online media). */
  listMedia(): Promise<string[]>;
  /** Loads a tape; MEDIA_NOT_FOUND when it is not there. Position: file 0. */
  loadMedia(label: string): Promise<void>;
  /** Label of the loaded tape, if any. */
  loadedMedia(): string | undefined;
  /** Number of files recorded on the loaded tape. */
  fileCount(): number;
  /** The file number the next `readNextFile` returns. */
  currentFileNumber(): number;
  /** Positions so that the next read returns file `fileNumber` (<= fileCount). */
  moveToFile(fileNumber: number): Promise<void>;
  rewind(): Promise<void>;
  readNextFile(): Promise<NextTapeFile>;
  close(): Promise<void>;
}

/** Drives that can tell file sizes without loading a tape (host-file drives can). */
export interface TapeFileSizes {
  /** Byte sizes of the files of tape `label`, or undefined when it is not there. */
  tapeFileSizes(label: string): Promise<number[] | undefined>;
}
