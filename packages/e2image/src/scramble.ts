import {
  BaseBlockDevice,
  type BlockDevice,
  BlockIoError,
  type ByteRange,
  type ExtentSet,
} from '@x/blockio';
import type { E2imageWarning } from './errors.js';
import { EXT4_MAX_REC_LEN } from './format/constants.js';
import { DIRENT_HEADER_SIZE } from './format/directory.js';

/**
 * e2image -s: directory entry names become 'A's plus a per-length base-26
 * counter, everything after each name up to rec_len is zeroed ("." and ".."
 * keep their names). htree index blocks are walked as plain entries, so their
 * index data is wiped too — as e2fsprogs does (misc/e2image.c scramble_dir_block).
 */
export class DirectoryScrambler {
  /** name_id[]: how many names of each length were scrambled so far, image-wide. */
  readonly #nameIds = new Int32Array(256);
  readonly #blockSize: number;
  readonly #onWarning: ((warning: E2imageWarning) => void) | undefined;

  constructor(blockSize: number, onWarning?: (warning: E2imageWarning) => void) {
    this.#blockSize = blockSize;
    this.#onWarning = onWarning;
  }

  /** Scrambles one directory block in place. `block` is only used in warnings. */
  scrambleBlock(buffer: Buffer, block: number): void {
    const blockSize = this.#blockSize;
    const end = buffer.length;
    let p = 0;
    while (p < end - 8) {
      const raw = buffer.readUInt16LE(p + 4);
      let recLen =
        raw === EXT4_MAX_REC_LEN || raw === 0 ? blockSize : (raw & 65532) | ((raw & 3) << 16);
      if (recLen < 8 || recLen % 4 !== 0 || p + recLen > end) {
        this.warn(block, `bad rec_len (${recLen})`);
        recLen = end - p;
        setRecLen(buffer, p, recLen, blockSize);
        p += recLen;
        continue;
      }
      const nameLen = buffer[p + 6] as number;
      if (nameLen + DIRENT_HEADER_SIZE > recLen) {
        this.warn(block, `bad name_len (${nameLen})`);
        buffer[p + 6] = (recLen - DIRENT_HEADER_SIZE) & 0xff;
        p += recLen;
        continue;
      }
      const name = p + DIRENT_HEADER_SIZE;
      buffer.fill(0, name + nameLen, p + recLen);
      const isDot = nameLen === 1 && buffer[name] === 0x2e;
      const isDotDot = nameLen === 2 && buffer[name] === 0x2e && buffer[name + 1] === 0x2e;
      if (!isDot && !isDotDot) {
        buffer.fill(0x41, name, name + nameLen);
        let id = this.#nameIds[nameLen] as number;
        this.#nameIds[nameLen] = id + 1;
        let cp = name;
        let left = nameLen;
        while (left > 0 && id > 0) {
          buffer[cp] = (buffer[cp] as number) + (id % 26);
          id = Math.floor(id / 26);
          cp++;
          left--;
        }
      }
      p += recLen;
    }
  }

  private warn(block: number, what: string): void {
    this.#onWarning?.({
      code: 'CORRUPT_DIRECTORY_BLOCK',
      message: `Corrupt directory block ${block}: ${what}`,
      block,
    });
  }
}

/** ext2fs_set_rec_len: lengths of 64 KiB and more use the large-block encoding. */
function setRecLen(buffer: Buffer, at: number, length: number, blockSize: number): void {
  if (length > blockSize || length % 4 !== 0) return;
  let encoded: number;
  if (length < 65536) encoded = length;
  else if (length === blockSize) encoded = blockSize === 65536 ? EXT4_MAX_REC_LEN : 0;
  else encoded = (length & 65532) | ((length >> 16) & 3);
  buffer.writeUInt16LE(encoded, at + 4);
}

/**
 * A read-only view of a filesystem device for copying metadata out: it reports no
 * extent map (the metadata set already says what to read, so no per-range
 * probing), and, when given directory extents, scrambles those blocks as they are
 * read. Scrambling numbers names in block order, so scrambled reads must come in
 * ascending order (copy with concurrency 1).
 */
export class MetadataSourceDevice extends BaseBlockDevice {
  readonly #source: BlockDevice;
  readonly #directories: ExtentSet | undefined;
  readonly #scrambler: DirectoryScrambler | undefined;
  readonly #blockSize: number;
  #nextScrambleOffset = 0;

  constructor(
    source: BlockDevice,
    blockSize: number,
    scramble?: { directories: ExtentSet; scrambler: DirectoryScrambler },
  ) {
    super({
      name: source.name,
      size: source.size,
      readOnly: true,
      alignment: source.alignment,
      queueDepth: source.queueDepth,
    });
    this.#source = source;
    this.#blockSize = blockSize;
    this.#directories = scramble?.directories;
    this.#scrambler = scramble?.scrambler;
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    await this.#source.read(offset, into);
    const directories = this.#directories;
    const scrambler = this.#scrambler;
    if (!directories || !scrambler) return;
    const buffer = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
    for (const range of directories.within(offset, into.byteLength) as Iterable<ByteRange>) {
      if (range.offset < this.#nextScrambleOffset) {
        throw new BlockIoError(
          'INVALID_ARGUMENT',
          'scrambled directory blocks must be read once, in ascending order',
          { path: this.name, offset: range.offset },
        );
      }
      for (let at = range.offset; at < range.offset + range.length; at += this.#blockSize) {
        const start = at - offset;
        scrambler.scrambleBlock(
          buffer.subarray(start, start + this.#blockSize),
          at / this.#blockSize,
        );
      }
      this.#nextScrambleOffset = range.offset + range.length;
    }
  }
}
