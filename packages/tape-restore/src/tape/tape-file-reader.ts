import type { FileHandle } from 'node:fs/promises';
import { fromSystemError } from '@x/blockio';
import { TapeRestoreError, type TapeRestoreErrorOptions } from '../errors.js';
import { PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0, sameBytes } from '../format/magics.js';
import {
  BLOCK_HEADER_SIZE,
  BLOCK_PAYLOAD_SIZE,
  BlockHeader,
  END_OF_STREAM,
  INCOMPLETE,
  PROXMOX_TAPE_BLOCK_SIZE,
} from '../format/tape-block.js';
import type { TapeReadStats } from './stats.js';

/**
 * Blocks read from the host file per read call: 1 at first, doubling up to 16 (4 MiB:
 * few syscalls, bounded memory). The ramp keeps a reader that stops early (a chunk
 * archive left as soon as it gave its chunks) from reading megabytes it does not need.
 */
const READ_AHEAD_BLOCKS = 16;

export interface TapeFileLocation {
  /** Label of the tape. */
  readonly tape: string;
  /** File number on that tape. */
  readonly fileNumber: number;
  /** The host file holding the tape file (virtual tape or dd dump). */
  readonly path: string;
}

/**
 * Reads the logical byte stream of one tape file: the payloads of its 256 KiB blocks
 * (pbs-tape.md §2), checking every block header as it comes — magic, sequence number,
 * size, END_OF_STREAM last and alone — and that a filemark (the end of the host file)
 * follows the END_OF_STREAM block. Reads never return bytes beyond the stream.
 */
export class TapeFileReader {
  readonly location: TapeFileLocation;
  readonly #handle: FileHandle;
  readonly #fileSize: number;
  readonly #stats: TapeReadStats;
  #buffer: Buffer;
  #readAhead = 1;
  /** Block index of #buffer[0], and how many whole blocks it holds. */
  #bufferBlock = 0;
  #bufferBlocks = 0;
  /** Current block (-1 before the first) and the payload window inside #buffer. */
  #block = -1;
  #cursor = 0;
  #payloadEnd = 0;
  #endOfStream = false;
  #incomplete = false;
  #closed = false;
  /** Logical stream offset of the next byte read. */
  #position = 0;

  constructor(
    handle: FileHandle,
    fileSize: number,
    location: TapeFileLocation,
    stats: TapeReadStats,
  ) {
    this.#handle = handle;
    this.#fileSize = fileSize;
    this.location = location;
    this.#stats = stats;
    const blocks = Math.max(
      1,
      Math.min(READ_AHEAD_BLOCKS, Math.ceil(fileSize / PROXMOX_TAPE_BLOCK_SIZE)),
    );
    this.#buffer = Buffer.allocUnsafe(blocks * PROXMOX_TAPE_BLOCK_SIZE);
  }

  /** Offset in the logical stream of the next byte. */
  get position(): number {
    return this.#position;
  }

  /** True once the END_OF_STREAM block has been consumed entirely. */
  get atEnd(): boolean {
    return this.#endOfStream && this.#cursor >= this.#payloadEnd;
  }

  /** The stream was cut at end of media (§2 INCOMPLETE); valid once atEnd. */
  get incomplete(): boolean {
    return this.#incomplete;
  }

  /** Where the next byte is: tape, file, block, host file and byte offset. */
  where(structure?: string): TapeRestoreErrorOptions {
    const block = Math.max(0, this.#block);
    const inBlock =
      this.#block < 0 ? 0 : this.#cursor - (block - this.#bufferBlock) * PROXMOX_TAPE_BLOCK_SIZE;
    return {
      tape: this.location.tape,
      fileNumber: this.location.fileNumber,
      block,
      path: this.location.path,
      offset: block * PROXMOX_TAPE_BLOCK_SIZE + Math.max(inBlock, BLOCK_HEADER_SIZE),
      structure,
    };
  }

  /**
   * Copies up to `target.byteLength` stream bytes into `target`; fewer only at the end
   * of the stream. Returns how many.
   */
  async read(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.byteLength) {
      if (this.#cursor >= this.#payloadEnd) {
        if (!(await this.#nextBlock())) break;
        continue;
      }
      const take = Math.min(target.byteLength - filled, this.#payloadEnd - this.#cursor);
      this.#buffer.copy(target, filled, this.#cursor, this.#cursor + take);
      this.#cursor += take;
      filled += take;
      this.#position += take;
    }
    return filled;
  }

  /** Exactly `length` bytes, or TRUNCATED naming `structure` when the stream ends first. */
  async readExact(length: number, structure: string): Promise<Buffer> {
    const where = this.where(structure);
    const out = Buffer.allocUnsafe(length);
    const got = await this.read(out);
    if (got !== length) {
      throw new TapeRestoreError(
        'TRUNCATED',
        `the stream ends after ${got} of the ${length} bytes of the ${structure}`,
        where,
      );
    }
    return out;
  }

  /** Skips up to `length` stream bytes; returns how many were skipped. */
  async skip(length: number): Promise<number> {
    let skipped = 0;
    while (skipped < length) {
      if (this.#cursor >= this.#payloadEnd) {
        if (!(await this.#nextBlock())) break;
        continue;
      }
      const take = Math.min(length - skipped, this.#payloadEnd - this.#cursor);
      this.#cursor += take;
      skipped += take;
      this.#position += take;
    }
    return skipped;
  }

  /** Reads and checks every remaining block through the END_OF_STREAM block and the filemark. */
  async skipToEnd(): Promise<void> {
    while (await this.#nextBlock()) this.#position += this.#payloadEnd - this.#cursor;
    this.#cursor = this.#payloadEnd;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }

  /** Moves to the next block; false at the end of the stream. */
  async #nextBlock(): Promise<boolean> {
    if (this.#endOfStream) {
      this.#cursor = this.#payloadEnd;
      return false;
    }
    const next = this.#block + 1;
    const blockOffset = next * PROXMOX_TAPE_BLOCK_SIZE;
    if (blockOffset >= this.#fileSize) {
      throw new TapeRestoreError(
        'NO_END_MARKER',
        `the tape file ends (filemark) after ${next} blocks without an END_OF_STREAM block`,
        { ...this.#at(next, blockOffset), structure: 'tape block stream' },
      );
    }
    if (blockOffset + PROXMOX_TAPE_BLOCK_SIZE > this.#fileSize) {
      throw new TapeRestoreError(
        'BAD_BLOCK',
        `block ${next} is truncated: ${this.#fileSize - blockOffset} of ${PROXMOX_TAPE_BLOCK_SIZE} bytes`,
        { ...this.#at(next, blockOffset), structure: 'tape block' },
      );
    }
    if (next >= this.#bufferBlock + this.#bufferBlocks) await this.#fill(next);
    const start = (next - this.#bufferBlock) * PROXMOX_TAPE_BLOCK_SIZE;
    const header = BlockHeader.decode(this.#buffer, start);
    const at = { ...this.#at(next, blockOffset), structure: 'tape block header' };
    if (!sameBytes(header.magic, PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0)) {
      throw new TapeRestoreError(
        'BAD_MAGIC',
        'the block does not start with the tape block magic',
        at,
      );
    }
    if (header.seqNr !== next) {
      throw new TapeRestoreError(
        'BAD_BLOCK',
        `block sequence number ${header.seqNr}, expected ${next}`,
        at,
      );
    }
    if (header.size > BLOCK_PAYLOAD_SIZE) {
      throw new TapeRestoreError(
        'BAD_BLOCK',
        `block size ${header.size} is over the ${BLOCK_PAYLOAD_SIZE}-byte payload`,
        at,
      );
    }
    const endOfStream = (header.flags & END_OF_STREAM) !== 0;
    if (!endOfStream && header.size !== BLOCK_PAYLOAD_SIZE) {
      // The writer fills every block but the last: a short one is a damaged stream.
      throw new TapeRestoreError(
        'BAD_BLOCK',
        `block holds ${header.size} bytes but is not the END_OF_STREAM block`,
        at,
      );
    }
    if (endOfStream && this.#fileSize > blockOffset + PROXMOX_TAPE_BLOCK_SIZE) {
      throw new TapeRestoreError(
        'BAD_BLOCK',
        `${this.#fileSize - blockOffset - PROXMOX_TAPE_BLOCK_SIZE} bytes follow the END_OF_STREAM block instead of a filemark`,
        at,
      );
    }
    this.#block = next;
    this.#cursor = start + BLOCK_HEADER_SIZE;
    this.#payloadEnd = this.#cursor + header.size;
    if (endOfStream) {
      this.#endOfStream = true;
      this.#incomplete = (header.flags & INCOMPLETE) !== 0;
    }
    return true;
  }

  async #fill(firstBlock: number): Promise<void> {
    const wholeBlocks = Math.floor(this.#fileSize / PROXMOX_TAPE_BLOCK_SIZE);
    const blocks = Math.min(this.#readAhead, wholeBlocks - firstBlock);
    this.#readAhead = Math.min(READ_AHEAD_BLOCKS, this.#readAhead * 2);
    if (this.#buffer.byteLength < blocks * PROXMOX_TAPE_BLOCK_SIZE) {
      this.#buffer = Buffer.allocUnsafe(blocks * PROXMOX_TAPE_BLOCK_SIZE);
    }
    const length = blocks * PROXMOX_TAPE_BLOCK_SIZE;
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.#handle.read(
          this.#buffer,
          done,
          length - done,
          firstBlock * PROXMOX_TAPE_BLOCK_SIZE + done,
        );
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (error) {
      throw fromSystemError(error, 'read the tape file', { path: this.location.path });
    }
    this.#stats.bytesRead += done;
    if (done < length) {
      throw new TapeRestoreError('TRUNCATED', 'the tape file shrank while being read', {
        ...this.#at(firstBlock, firstBlock * PROXMOX_TAPE_BLOCK_SIZE + done),
      });
    }
    this.#bufferBlock = firstBlock;
    this.#bufferBlocks = blocks;
  }

  #at(block: number, offset: number): TapeRestoreErrorOptions {
    return {
      tape: this.location.tape,
      fileNumber: this.location.fileNumber,
      block,
      path: this.location.path,
      offset,
    };
  }
}
