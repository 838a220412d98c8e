import {
  assertOffset,
  BaseBlockDevice,
  type ByteRange,
  clampRange,
  type Extent,
  throwIfAborted,
} from '@x/blockio';
import { walkInodeBlocks } from './block-walk.js';
import { E2imageError } from './errors.js';
import type { Filesystem } from './filesystem.js';
import { Inode } from './inode.js';
import { inInodeXattr } from './xattr-entries.js';

/** One run of a file: `count` blocks from logical block `logical` stored at `physical`. */
export interface FileExtent {
  readonly logical: number;
  readonly physical: number;
  readonly count: number;
  /** Allocated but never written: reads as zeros. */
  readonly unwritten: boolean;
}

/** Name index of "system." attributes, where inline data continues ("system.data"). */
const XATTR_INDEX_SYSTEM = 7;

async function toInode(fs: Filesystem, inode: Inode | number): Promise<Inode> {
  return inode instanceof Inode ? inode : fs.readInode(inode);
}

/** The file's block runs in logical order (extent leaves or block map), without holes. */
export async function fileExtents(
  fs: Filesystem,
  inodeOrNumber: Inode | number,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<FileExtent[]> {
  const inode = await toInode(fs, inodeOrNumber);
  if (!inode.hasValidBlocks) return [];
  const runs: FileExtent[] = [];
  await walkInodeBlocks(
    fs,
    inode,
    {
      data: (logical, physical, count, unwritten) =>
        runs.push({ logical, physical, count, unwritten }),
    },
    // A file's contents depend on every pointer: anything libext2fs would
    // tolerate (a skipped tree, a shared mapping block) is an error here.
    { data: true, signal: options.signal, strict: true },
  );
  runs.sort((a, b) => a.logical - b.logical);
  return runs;
}

/**
 * A file inside the filesystem as a read-only BlockDevice of its i_size bytes:
 * holes and unwritten extents read as zeros, inline data comes from the inode.
 */
export class InodeDevice extends BaseBlockDevice {
  readonly fs: Filesystem;
  readonly inode: Inode;
  readonly #extents: FileExtent[];
  readonly #inline: Buffer | undefined;

  private constructor(
    fs: Filesystem,
    inode: Inode,
    extents: FileExtent[],
    inline: Buffer | undefined,
  ) {
    super({ name: `${fs.device.name}#inode${inode.ino}`, size: inode.size, readOnly: true });
    this.fs = fs;
    this.inode = inode;
    this.#extents = extents;
    this.#inline = inline;
  }

  static async open(
    fs: Filesystem,
    inodeOrNumber: Inode | number,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<InodeDevice> {
    const inode = await toInode(fs, inodeOrNumber);
    if (inode.hasInlineData) return new InodeDevice(fs, inode, [], inlineData(fs, inode));
    if (!inode.hasValidBlocks) {
      // Fast symlinks keep the target in i_block; devices and fifos have no contents.
      const inline = inode.isSymlink ? Buffer.from(inode.blockArea) : Buffer.alloc(0);
      return new InodeDevice(fs, inode, [], inline);
    }
    return new InodeDevice(fs, inode, await fileExtents(fs, inode, options), undefined);
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    const target = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
    if (this.#inline) {
      target.fill(0);
      this.#inline.copy(target, 0, Math.min(offset, this.#inline.length));
      return;
    }
    const blockSize = this.fs.blockSize;
    const end = offset + target.length;
    target.fill(0);
    // Binary search the first run that ends after `offset`.
    const firstBlock = Math.floor(offset / blockSize);
    let low = 0;
    let high = this.#extents.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const run = this.#extents[middle] as FileExtent;
      if (run.logical + run.count <= firstBlock) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < this.#extents.length; i++) {
      const run = this.#extents[i] as FileExtent;
      const runStart = run.logical * blockSize;
      if (runStart >= end) break;
      if (run.unwritten) continue;
      const from = Math.max(offset, runStart);
      const to = Math.min(end, runStart + run.count * blockSize);
      if (to <= from) continue;
      const physical = run.physical * blockSize + (from - runStart);
      await this.fs.device.read(physical, target.subarray(from - offset, to - offset));
    }
  }

  async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const { offset, length } = clampRange(this, range);
    const end = offset + length;
    if (this.#inline) {
      if (length > 0) yield { offset, length, kind: 'data' };
      return;
    }
    const blockSize = this.fs.blockSize;
    let position = offset;
    for (const run of this.#extents) {
      const start = Math.max(position, run.logical * blockSize);
      const stop = Math.min(end, (run.logical + run.count) * blockSize);
      if (stop <= start) continue;
      if (start > position)
        yield { offset: position, length: start - position, kind: 'unallocated' };
      yield { offset: start, length: stop - start, kind: run.unwritten ? 'zero' : 'data' };
      position = stop;
    }
    if (position < end) yield { offset: position, length: end - position, kind: 'unallocated' };
  }
}

/** Inline data: i_block, continued by the "system.data" attribute. */
function inlineData(fs: Filesystem, inode: Inode): Buffer {
  const more = inInodeXattr(fs, inode, XATTR_INDEX_SYSTEM, 'data');
  const all = more ? Buffer.concat([inode.blockArea, more]) : Buffer.from(inode.blockArea);
  return all.subarray(0, Math.min(all.length, inode.size));
}

export interface ReadFileOptions {
  /**
   * Where to start (default 0); past the end gives an empty buffer, as pread does.
   * Like `length` and `maxBytes`, a non-negative integer below 2^53 (else OUT_OF_RANGE,
   * or UNSAFE_INTEGER above 2^53 - 1).
   */
  offset?: number | undefined;
  /** How many bytes (default: to the end of the file); fewer when the file ends first. */
  length?: number | undefined;
  /** Refuse (TOO_LARGE) to return more than this many bytes at once. Default 1 GiB. */
  maxBytes?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Bytes read between checks of the signal. */
const READ_CHUNK = 8 << 20;

/** Reads up to `length` bytes (default: the whole file) from `offset`. Bounded by `maxBytes`. */
export async function readFile(
  fs: Filesystem,
  inodeOrNumber: Inode | number,
  options: ReadFileOptions = {},
): Promise<Buffer> {
  throwIfAborted(options.signal, fs.device.name);
  // Checked before the inode is read: NaN or -1 would otherwise slip past the
  // clamps below (a NaN maxBytes disables the limit) and fail later, if at all,
  // as a read error on the device with no word about the argument.
  const ino = inodeOrNumber instanceof Inode ? inodeOrNumber.ino : inodeOrNumber;
  const context = { path: fs.device.name, structure: `inode ${ino}` };
  for (const name of ['offset', 'length', 'maxBytes'] as const) {
    const value = options[name];
    if (value !== undefined) assertOffset(value, `readFile ${name}`, context);
  }
  const device = await InodeDevice.open(fs, inodeOrNumber, { signal: options.signal });
  const offset = Math.min(options.offset ?? 0, device.size);
  const length = Math.min(options.length ?? device.size - offset, device.size - offset);
  const max = options.maxBytes ?? 1 << 30;
  if (length > max) {
    throw new E2imageError(
      'TOO_LARGE',
      `inode ${device.inode.ino}: ${length} bytes asked for, more than the maxBytes ${max} readFile returns at once; use InodeDevice`,
      { path: fs.device.name, inode: device.inode.ino },
    );
  }
  const result = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; done += READ_CHUNK) {
    throwIfAborted(options.signal, fs.device.name);
    await device.read(offset + done, result.subarray(done, Math.min(length, done + READ_CHUNK)));
  }
  return result;
}

/** A symlink's target (fast, slow or inline). */
export async function readSymlink(fs: Filesystem, inodeOrNumber: Inode | number): Promise<string> {
  const inode = await toInode(fs, inodeOrNumber);
  if (!inode.isSymlink) {
    throw new E2imageError(
      'NOT_A_SYMLINK',
      `inode ${inode.ino} is ${inode.fileType === 'regular' ? 'a regular file' : `of type ${inode.fileType}`}, not a symbolic link`,
      { path: fs.device.name, inode: inode.ino },
    );
  }
  return (await readFile(fs, inode, { maxBytes: 1 << 16 })).toString('utf8');
}
