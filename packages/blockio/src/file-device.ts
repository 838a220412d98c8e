import type { Stats } from 'node:fs';
import { constants, readSync, writeSync } from 'node:fs';
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { BaseBlockDevice, type ByteRange, clampRange, type Extent } from './block-device.js';
import { BlockIoError, fromSystemError } from './errors.js';
import { type FileDataMap, fileExtents, mapFileData } from './file-extents.js';
import { assertOffset } from './safe-number.js';

export interface OpenFileOptions {
  /** Open for writing. Default: read-only. */
  writable?: boolean;
  /** Create the file if it does not exist (implies writable). */
  create?: boolean;
  /** Reads past the end return zeros and writes past it grow the file (outputs). */
  zeroExtends?: boolean;
  /** Treat the file as this many bytes instead of its current size. */
  size?: number;
  /**
   * How reads and writes reach the kernel. `sync` makes the pread/pwrite call on the
   * calling thread: for page-cached or readahead-friendly regular files a request
   * costs less than handing it to libuv's thread pool and back (measured: a sparse
   * copy spends more time in that hand-off than in the copy). `async` uses the
   * thread pool, so requests overlap and the event loop never blocks on the device:
   * better for cold block devices with queue depth, or storage that may hang.
   * Default: `sync` for regular files, `async` for block devices.
   */
  io?: 'sync' | 'async';
  /**
   * The name errors and `name` use instead of `path`: an output written under a
   * temporary name reports the name the user gave (createOutputFile).
   */
  name?: string;
  /** Permission bits of a file `create` makes (before the umask). Default 0o600. */
  mode?: number;
  /**
   * A block device opened for writing must not be in use: Linux refuses the open
   * (`EBUSY`, then `TARGET_BUSY`) when it is mounted or held by the kernel (a RAID
   * member, a device-mapper table, swap). No effect on regular files.
   */
  exclusive?: boolean;
}

/**
 * A regular file or a block device. Read-only unless asked; block device sizes come
 * from sysfs or, failing that, by probing for the end.
 */
export class FileDevice extends BaseBlockDevice {
  readonly handle: FileHandle;
  readonly isBlockDevice: boolean;
  #knownZeroed = false;
  readonly #syncIo: boolean;
  #dataMap: Promise<FileDataMap | undefined> | undefined;

  private constructor(
    name: string,
    handle: FileHandle,
    size: number,
    isBlockDevice: boolean,
    options: OpenFileOptions,
    blockSize: number,
  ) {
    super({
      name,
      size,
      readOnly: !(options.writable || options.create),
      zeroExtends: options.zeroExtends ?? false,
      alignment: { logical: isBlockDevice ? 512 : 1, optimal: Math.max(blockSize, 1 << 16) },
      queueDepth: syncIo(options, isBlockDevice) ? 1 : 4,
    });
    this.handle = handle;
    this.isBlockDevice = isBlockDevice;
    this.#syncIo = syncIo(options, isBlockDevice);
  }

  static async open(path: string, options: OpenFileOptions = {}): Promise<FileDevice> {
    const writable = options.writable || options.create;
    const flags = writable
      ? constants.O_RDWR | (options.create ? constants.O_CREAT : 0)
      : constants.O_RDONLY;
    const name = options.name ?? path;
    // Checked before the open too: opening a FIFO waits for a writer, forever if none comes.
    const before = await stat(path).catch(() => undefined);
    if (before !== undefined) refuseUnlessFileOrBlockDevice(before, name);
    // O_EXCL without O_CREAT means "not in use" for a block device (open(2)).
    const exclusive =
      options.exclusive && before?.isBlockDevice() && !options.create ? constants.O_EXCL : 0;
    let handle: FileHandle;
    try {
      handle = await open(path, flags | exclusive, options.mode ?? 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EBUSY') {
        throw new BlockIoError(
          'TARGET_BUSY',
          'the device is in use (mounted, or held by another device such as RAID or device-mapper); not writing to it',
          { path: name, cause: error },
        );
      }
      throw fromSystemError(error, `open ${writable ? 'for writing' : 'for reading'}`, {
        path: name,
      });
    }
    try {
      const stats = await handle.stat();
      refuseUnlessFileOrBlockDevice(stats, name);
      const isBlockDevice = stats.isBlockDevice();
      const size =
        options.size ?? (isBlockDevice ? await blockDeviceSize(handle, stats.rdev) : stats.size);
      return new FileDevice(name, handle, size, isBlockDevice, options, stats.blksize || 4096);
    } catch (error) {
      await handle.close().catch(() => {});
      throw fromSystemError(error, 'inspect', { path: name });
    }
  }

  /** Records that every byte not yet written reads as zero (a freshly truncated file). */
  markZeroed(): void {
    this.#knownZeroed = true;
  }

  get knownZeroed(): boolean {
    return this.#knownZeroed;
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.byteLength) {
      let bytesRead: number;
      try {
        bytesRead = this.#syncIo
          ? readSync(this.handle.fd, into, done, into.byteLength - done, offset + done)
          : (await this.handle.read(into, done, into.byteLength - done, offset + done)).bytesRead;
      } catch (error) {
        throw fromSystemError(error, `read ${into.byteLength} bytes`, {
          path: this.name,
          offset: offset + done,
        });
      }
      if (bytesRead === 0) {
        if (this.zeroExtends) {
          into.fill(0, done);
          return;
        }
        throw new BlockIoError(
          'SHORT_READ',
          `file ended after ${offset + done} bytes while reading ${into.byteLength} bytes at ${offset}; did it shrink while being read?`,
          { path: this.name, offset: offset + done },
        );
      }
      done += bytesRead;
    }
  }

  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.byteLength) {
      try {
        done += this.#syncIo
          ? writeSync(this.handle.fd, data, done, data.byteLength - done, offset + done)
          : (await this.handle.write(data, done, data.byteLength - done, offset + done))
              .bytesWritten;
      } catch (error) {
        this.#dataMap = undefined; // part of it may have been written
        throw fromSystemError(error, `write ${data.byteLength} bytes`, {
          path: this.name,
          offset: offset + done,
        });
      }
    }
    // Dropped once the bytes are in: a map asked for from now on sees them.
    this.#dataMap = undefined;
  }

  protected override async writeZeroesAt(offset: number, length: number): Promise<void> {
    // A freshly truncated regular file already reads as zeros past what we wrote;
    // only extend it so the size is right.
    if (this.#knownZeroed && !this.isBlockDevice && offset >= this.size) {
      await this.truncate(offset + length);
      return;
    }
    await super.writeZeroesAt(offset, length);
  }

  /** Sets a regular file's length (sparse when growing). */
  async truncate(size: number): Promise<void> {
    this.checkWritable();
    assertOffset(size, 'file size', { path: this.name });
    if (this.isBlockDevice) {
      throw new BlockIoError('UNSUPPORTED', 'cannot change the size of a block device', {
        path: this.name,
      });
    }
    try {
      await this.handle.truncate(size);
    } catch (error) {
      throw fromSystemError(error, `set the size to ${size} bytes`, { path: this.name });
    } finally {
      this.#dataMap = undefined;
    }
    this.setSize(size);
  }

  protected override async flushDevice(): Promise<void> {
    try {
      await this.handle.sync();
    } catch (error) {
      throw fromSystemError(error, 'flush to stable storage', { path: this.name });
    }
  }

  protected override async closeDevice(): Promise<void> {
    await this.handle.close();
  }

  extents(range?: ByteRange): AsyncIterable<Extent> {
    const clamped = clampRange(this, range);
    if (this.isBlockDevice) return dataExtent(clamped);
    return fileExtents(this.name, this.size, clamped, () => this.dataMap());
  }

  /**
   * The file's data map, asked for once and kept: callers that copy thousands of
   * ranges must not run filefrag per range. An input does not change under us; a
   * writable file changes only through this device (writes, zeroing and truncate
   * all end in writeAt or truncate), which drop the map so the next call maps afresh.
   */
  private dataMap(): Promise<FileDataMap | undefined> {
    this.#dataMap ??= mapFileData(this.name, this.size);
    return this.#dataMap;
  }
}

function syncIo(options: OpenFileOptions, isBlockDevice: boolean): boolean {
  return (options.io ?? (isBlockDevice ? 'async' : 'sync')) === 'sync';
}

async function* dataExtent(range: ByteRange): AsyncIterable<Extent> {
  if (range.length > 0) yield { ...range, kind: 'data' };
}

async function blockDeviceSize(handle: FileHandle, rdev: number): Promise<number> {
  // Linux dev_t layout (see glibc's gnu_dev_major/minor).
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff);
  try {
    const sectors = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8');
    const size = Number(sectors.trim()) * 512;
    if (Number.isSafeInteger(size) && size >= 0) return size;
  } catch {
    // No sysfs (or not Linux): probe instead.
  }
  return probeEnd(handle);
}

/** Finds the size of something we can only read, by exponential then binary search. */
async function probeEnd(handle: FileHandle): Promise<number> {
  const probe = Buffer.allocUnsafe(1);
  const readable = async (offset: number) =>
    (await handle.read(probe, 0, 1, offset)).bytesRead === 1;
  if (!(await readable(0))) return 0;
  let low = 0;
  let high = 512;
  while (await readable(high)) {
    low = high;
    high *= 2;
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await readable(middle)) low = middle;
    else high = middle;
  }
  return low + 1;
}

/**
 * Only regular files and block devices have a size and positional I/O. A pipe, a
 * character device or a socket would read as an empty (or endless) image and give
 * a silently wrong result, so it is refused, as qemu-img refuses it.
 */
function refuseUnlessFileOrBlockDevice(stats: Stats, path: string): void {
  if (stats.isFile() || stats.isBlockDevice()) return;
  if (stats.isDirectory()) {
    throw new BlockIoError('EISDIR', 'is a directory, not a file or block device', { path });
  }
  const kind = stats.isFIFO()
    ? 'a pipe (FIFO)'
    : stats.isCharacterDevice()
      ? 'a character device'
      : stats.isSocket()
        ? 'a socket'
        : 'not a regular file';
  throw new BlockIoError(
    'NOT_A_FILE',
    `is ${kind}, not a regular file or block device: save it to a file first`,
    { path },
  );
}
