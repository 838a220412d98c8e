import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0 } from '../format/magics.js';
import {
  BLOCK_PAYLOAD_SIZE,
  BlockHeader,
  END_OF_STREAM,
  INCOMPLETE,
  PROXMOX_TAPE_BLOCK_SIZE,
} from '../format/tape-block.js';

/**
 * One tape file being written as a block stream (pbs-tape.md §2), with the virtual
 * drive's end-of-media behaviour: block writes number maxBlocks+1 and +2 succeed but
 * report logical end of media (LEOM); one more is allowed for the END_OF_STREAM block
 * a writer sends after reacting to LEOM.
 */
export class BlockStreamWriter {
  readonly #maxBlocks: number;
  readonly #blocks: Buffer[] = [];
  /** Given, blocks go straight to this file descriptor instead of being kept. */
  readonly #fd: number | undefined;
  #count = 0;
  readonly #payload = Buffer.alloc(BLOCK_PAYLOAD_SIZE);
  #filled = 0;
  #leom = false;
  #finished = false;

  constructor(maxBlocks: number, fd?: number) {
    this.#maxBlocks = maxBlocks;
    this.#fd = fd;
  }

  /** Blocks written so far. */
  get blockCount(): number {
    return this.#count;
  }

  /** True once a block write reported logical end of media. */
  get leom(): boolean {
    return this.#leom;
  }

  get blocks(): readonly Buffer[] {
    return this.#blocks;
  }

  /** Writes bytes; returns true when logical end of media has been reached. */
  write(data: Uint8Array): boolean {
    let at = 0;
    while (at < data.byteLength) {
      const take = Math.min(data.byteLength - at, BLOCK_PAYLOAD_SIZE - this.#filled);
      this.#payload.set(data.subarray(at, at + take), this.#filled);
      this.#filled += take;
      at += take;
      if (this.#filled === BLOCK_PAYLOAD_SIZE) this.#emit(0, BLOCK_PAYLOAD_SIZE);
    }
    return this.#leom;
  }

  /** The END_OF_STREAM block (with INCOMPLETE when the stream was cut). */
  finish(incomplete = false): void {
    if (this.#finished) throw new Error('stream already finished');
    this.#emit(END_OF_STREAM | (incomplete ? INCOMPLETE : 0), this.#filled);
    this.#finished = true;
  }

  #emit(flags: number, size: number): void {
    const seqNr = this.#count;
    if (seqNr + 1 > this.#maxBlocks + 3) {
      throw Object.assign(new Error('no space left on virtual tape'), { code: 'ENOSPC' });
    }
    const block = Buffer.alloc(PROXMOX_TAPE_BLOCK_SIZE);
    BlockHeader.encode({ magic: PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0, flags, size, seqNr }, block);
    this.#payload.copy(block, 16, 0, size);
    if (this.#fd === undefined) this.#blocks.push(block);
    else writeSync(this.#fd, block);
    this.#count++;
    this.#payload.fill(0);
    this.#filled = 0;
    if (seqNr + 1 >= this.#maxBlocks + 1) this.#leom = true;
  }
}

/** A tape of a PBS virtual tape drive directory being written (§2 Virtual tape driver). */
export class VirtualTapeWriter {
  readonly directory: string;
  readonly label: string;
  readonly maxSize: number;
  readonly fileSizes: number[] = [];

  constructor(directory: string, label: string, maxSize: number) {
    this.directory = directory;
    this.label = label;
    this.maxSize = maxSize;
  }

  #open: { fd: number; path: string } | undefined;

  /**
   * A stream for the next tape file, sized by the space left (§2: max(2, free / 256 KiB)).
   * Its blocks go straight to the tape file (big media sets need not fit in memory).
   */
  startFile(): BlockStreamWriter {
    const used = this.fileSizes.reduce((a, b) => a + b, 0);
    const free = Math.max(0, this.maxSize - used);
    const fileNumber = this.fileSizes.length;
    const path = join(this.directory, `tapefile-${fileNumber}-${this.label}.json`);
    if (this.#open) closeSync(this.#open.fd);
    this.#open = { fd: openSync(path, 'w'), path };
    return new BlockStreamWriter(
      Math.max(2, Math.floor(free / PROXMOX_TAPE_BLOCK_SIZE)),
      this.#open.fd,
    );
  }

  /** Records a finished stream as the next file; returns its file number. */
  async commitFile(stream: BlockStreamWriter): Promise<number> {
    if (this.#open) {
      closeSync(this.#open.fd);
      this.#open = undefined;
    }
    const fileNumber = this.fileSizes.length;
    this.fileSizes.push(stream.blockCount * PROXMOX_TAPE_BLOCK_SIZE);
    await this.#writeIndex();
    return fileNumber;
  }

  async #writeIndex(): Promise<void> {
    await writeJsonAtomic(join(this.directory, `tape-${this.label}.json`), {
      files: this.fileSizes.length,
    });
    await writeJsonAtomic(join(this.directory, 'drive-status.json'), {
      current_tape: { name: this.label, pos: this.fileSizes.length },
    });
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.tmp`;
  await rm(temporary, { force: true });
  await writeFile(temporary, JSON.stringify(value, null, 2));
  await rename(temporary, path);
}

/** Writes a drive's tapes as dd dumps: `<dir>/<label>/file<N>` (what DdDumpDrive reads). */
export async function copyTapeAsDump(
  virtualDir: string,
  label: string,
  fileCount: number,
  dumpDir: string,
): Promise<void> {
  const { copyFile } = await import('node:fs/promises');
  await mkdir(join(dumpDir, label), { recursive: true });
  for (let n = 0; n < fileCount; n++) {
    await copyFile(
      join(virtualDir, `tapefile-${n}-${label}.json`),
      join(dumpDir, label, `file${n}`),
    );
  }
}
