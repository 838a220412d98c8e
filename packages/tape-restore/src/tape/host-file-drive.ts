import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fromSystemError } from '@x/blockio';
import { TapeRestoreError } from '../errors.js';
import { newTapeReadStats, type TapeReadStats } from './stats.js';
import type { NextTapeFile, TapeDrive, TapeFileSizes } from './tape-drive.js';
import { TapeFileReader } from './tape-file-reader.js';

/**
 * A drive whose tapes are directories of host files, one per tape file (the end of a
 * host file is the filemark). Subclasses say where a tape's files are. Inputs are only
 * read: the position is kept in memory, never written back to the drive directory.
 */
abstract class HostFileTapeDrive implements TapeDrive, TapeFileSizes {
  readonly name: string;
  readonly stats: TapeReadStats = newTapeReadStats();
  #label: string | undefined;
  #files: string[] = [];
  #position = 0;

  constructor(directory: string) {
    this.name = directory;
  }

  abstract listMedia(): Promise<string[]>;
  protected abstract tapeFiles(label: string): Promise<string[] | undefined>;

  async loadMedia(label: string): Promise<void> {
    const files = await this.tapeFiles(label);
    if (files === undefined) {
      throw new TapeRestoreError(
        'MEDIA_NOT_FOUND',
        `tape ${label} is not in the drive (online: ${(await this.listMedia()).join(', ') || 'none'})`,
        { tape: label, path: this.name },
      );
    }
    this.#label = label;
    this.#files = files;
    this.#position = 0;
  }

  async tapeFileSizes(label: string): Promise<number[] | undefined> {
    const files = await this.tapeFiles(label);
    if (files === undefined) return undefined;
    const sizes: number[] = [];
    for (const path of files)
      sizes.push(
        await stat(path).then(
          (s) => s.size,
          () => 0,
        ),
      );
    return sizes;
  }

  loadedMedia(): string | undefined {
    return this.#label;
  }

  fileCount(): number {
    return this.#files.length;
  }

  currentFileNumber(): number {
    return this.#position;
  }

  async moveToFile(fileNumber: number): Promise<void> {
    const label = this.#requireLoaded();
    if (!Number.isSafeInteger(fileNumber) || fileNumber < 0 || fileNumber > this.#files.length) {
      throw new TapeRestoreError(
        'END_OF_DATA',
        `cannot move to file ${fileNumber}: the tape holds ${this.#files.length} files`,
        { tape: label, fileNumber, path: this.name },
      );
    }
    this.#position = fileNumber;
  }

  async rewind(): Promise<void> {
    this.#requireLoaded();
    this.#position = 0;
  }

  async readNextFile(): Promise<NextTapeFile> {
    const label = this.#requireLoaded();
    const fileNumber = this.#position;
    const path = this.#files[fileNumber];
    if (path === undefined) return { kind: 'end-of-data', fileNumber };
    this.#position++;
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw fromSystemError(error, `open file ${fileNumber} of tape ${label}`, { path });
    }
    const { size } = await handle.stat();
    if (size === 0) {
      await handle.close();
      return { kind: 'filemark', fileNumber };
    }
    this.stats.tapeFilesOpened++;
    const reader = new TapeFileReader(handle, size, { tape: label, fileNumber, path }, this.stats);
    return { kind: 'file', fileNumber, reader };
  }

  async close(): Promise<void> {
    this.#label = undefined;
    this.#files = [];
  }

  #requireLoaded(): string {
    if (this.#label === undefined) {
      throw new TapeRestoreError('MEDIA_NOT_FOUND', 'no tape is loaded in the drive', {
        path: this.name,
      });
    }
    return this.#label;
  }
}

/**
 * PBS's file-backed virtual tape drive (pbs-tape.md §2): `tape-<label>.json` holds
 * `{"files": N}`, file `pos` is `tapefile-<pos>-<label>.json`.
 */
export class VirtualTapeDrive extends HostFileTapeDrive {
  async listMedia(): Promise<string[]> {
    const names = await readdirOrFail(this.name);
    return names
      .map((name) => /^tape-(.+)\.json$/.exec(name)?.[1])
      .filter((label): label is string => label !== undefined)
      .sort();
  }

  protected async tapeFiles(label: string): Promise<string[] | undefined> {
    const indexPath = join(this.name, `tape-${label}.json`);
    let text: string;
    try {
      text = await readFile(indexPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(error, 'read the tape index', { path: indexPath });
    }
    let files = 0;
    // §2: an empty index file is treated as 0 files.
    if (text.trim() !== '') {
      try {
        files = (JSON.parse(text) as { files?: unknown }).files as number;
      } catch (error) {
        throw new TapeRestoreError(
          'BAD_HEADER',
          `the tape index is not JSON: ${(error as Error).message}`,
          {
            tape: label,
            path: indexPath,
            structure: 'virtual tape index',
          },
        );
      }
      if (!Number.isSafeInteger(files) || files < 0) {
        throw new TapeRestoreError('BAD_HEADER', 'the tape index has no valid "files" count', {
          tape: label,
          path: indexPath,
          structure: 'virtual tape index',
        });
      }
    }
    return Array.from({ length: files }, (_, pos) =>
      join(this.name, `tapefile-${pos}-${label}.json`),
    );
  }
}

/**
 * Tapes dumped with `dd`: one sub-directory per tape, named by its label, holding one
 * host file per tape file; the file number is the last number in the name
 * (`file0`, `3.bin`, `tape-file-012.img`). The numbers must run 0, 1, … without gaps.
 */
export class DdDumpDrive extends HostFileTapeDrive {
  async listMedia(): Promise<string[]> {
    const entries = await readdirOrFail(this.name);
    const labels: string[] = [];
    for (const entry of entries) {
      if ((await stat(join(this.name, entry))).isDirectory()) labels.push(entry);
    }
    return labels.sort();
  }

  protected async tapeFiles(label: string): Promise<string[] | undefined> {
    if (label.includes('/') || label === '.' || label === '..') return undefined;
    const directory = join(this.name, label);
    let names: string[];
    try {
      names = await readdir(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(error, 'list the tape dump', { path: directory });
    }
    const numbered = new Map<number, string>();
    for (const name of names) {
      const match = /(\d+)(?:\.[^.\d]*)?$/.exec(name);
      if (!match?.[1]) continue;
      const fileNumber = Number(match[1]);
      if (numbered.has(fileNumber)) {
        throw new TapeRestoreError(
          'BAD_HEADER',
          `two dump files claim file number ${fileNumber}: ${numbered.get(fileNumber)} and ${name}`,
          { tape: label, fileNumber, path: directory, structure: 'dd dump directory' },
        );
      }
      numbered.set(fileNumber, name);
    }
    const files: string[] = [];
    for (let fileNumber = 0; fileNumber < numbered.size; fileNumber++) {
      const name = numbered.get(fileNumber);
      if (name === undefined) {
        throw new TapeRestoreError('BAD_HEADER', `the dump has no file number ${fileNumber}`, {
          tape: label,
          fileNumber,
          path: directory,
          structure: 'dd dump directory',
        });
      }
      files.push(join(directory, name));
    }
    return files;
  }
}

async function readdirOrFail(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    throw fromSystemError(error, 'list the drive directory', { path: directory });
  }
}

/**
 * Opens a drive directory: a PBS virtual tape drive when it has `tape-*.json` or
 * `drive-status.json`, else a directory of dd dumps (one sub-directory per tape).
 */
export async function openTapeDrive(directory: string): Promise<TapeDrive> {
  const names = await readdirOrFail(directory);
  const isVirtual = names.some(
    (name) => name === 'drive-status.json' || /^tape-.+\.json$/.test(name),
  );
  return isVirtual ? new VirtualTapeDrive(directory) : new DdDumpDrive(directory);
}
