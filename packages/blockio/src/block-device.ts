import { BlockIoError, type BlockIoErrorOptions } from './errors.js';
import { assertOffset } from './safe-number.js';

/** What a byte range of a device holds, as far as the device can tell without reading it. */
export type ExtentKind = 'data' | 'zero' | 'unallocated';

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface Extent extends ByteRange {
  readonly kind: ExtentKind;
}

export interface DeviceAlignment {
  /** Smallest unit the device can read or write without read-modify-write (bytes). */
  readonly logical: number;
  /** Request size the device handles best (bytes), e.g. the cluster size of an image. */
  readonly optimal: number;
}

/**
 * A random-access device. Every tool is a pipeline from one of these to another.
 *
 * Reads never return short: a read that reaches past `size` is an OUT_OF_RANGE
 * error, unless the device declares `zeroExtends` (a growing output), in which
 * case bytes past the end read as zeros and writes past the end grow it.
 */
export interface BlockDevice {
  /** Path or description, used in error messages. */
  readonly name: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly zeroExtends: boolean;
  readonly alignment: DeviceAlignment;
  /**
   * How many requests in flight the device serves well. 1 for devices that complete
   * requests synchronously (more only interleaves them, which evicts each request's
   * buffer from the CPU cache before it is used); more for the thread pool or a
   * network. Callers such as `copy` take it as their default concurrency.
   */
  readonly queueDepth?: number;

  /** Reads `length` bytes into a new buffer. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Reads exactly `into.byteLength` bytes into `into` and returns it. */
  read<T extends Uint8Array>(offset: number, into: T): Promise<T>;
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes the range read as zeros; devices that can do so cheaply avoid storing them. */
  writeZeroes(offset: number, length: number): Promise<void>;
  /** The range's contents are no longer needed; afterwards it reads as zeros. */
  discard(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  /**
   * Which parts of `range` hold data, read as zero, or are unallocated, in order and
   * without gaps. Absent when the device cannot tell (then everything is data).
   */
  extents?(range?: ByteRange): AsyncIterable<Extent>;
}

export interface BaseDeviceOptions {
  name: string;
  size: number;
  readOnly?: boolean | undefined;
  zeroExtends?: boolean | undefined;
  alignment?: Partial<DeviceAlignment> | undefined;
  /** See BlockDevice.queueDepth. Default 4. */
  queueDepth?: number | undefined;
}

const ZERO_CHUNK = 1 << 20;
const DEFAULT_QUEUE_DEPTH = 4;
let sharedZeroes: Buffer | undefined;

/** A shared, never-written 1 MiB buffer of zeros. */
export function zeroBuffer(length = ZERO_CHUNK): Buffer {
  if (length <= ZERO_CHUNK) {
    sharedZeroes ??= Buffer.alloc(ZERO_CHUNK);
    return sharedZeroes.subarray(0, length);
  }
  return Buffer.alloc(length);
}

/**
 * Argument checking, range checking and read-only enforcement shared by every
 * device, so implementations only move bytes.
 */
export abstract class BaseBlockDevice implements BlockDevice {
  readonly name: string;
  readonly readOnly: boolean;
  readonly zeroExtends: boolean;
  readonly alignment: DeviceAlignment;
  readonly queueDepth: number;
  #size: number;
  #closed = false;

  protected constructor(options: BaseDeviceOptions) {
    this.name = options.name;
    this.#size = assertOffset(options.size, 'device size', { path: options.name });
    this.readOnly = options.readOnly ?? true;
    this.zeroExtends = options.zeroExtends ?? false;
    this.queueDepth = options.queueDepth ?? DEFAULT_QUEUE_DEPTH;
    this.alignment = {
      logical: options.alignment?.logical ?? 1,
      optimal: options.alignment?.optimal ?? 1 << 20,
    };
  }

  get size(): number {
    return this.#size;
  }

  /** Lets growing devices record their new size. */
  protected setSize(size: number): void {
    this.#size = assertOffset(size, 'device size', { path: this.name });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Reads bytes that are known to lie within [0, size). */
  protected abstract readAt(offset: number, into: Uint8Array): Promise<void>;

  protected writeAt(_offset: number, _data: Uint8Array): Promise<void> {
    return Promise.reject(this.readOnlyError());
  }

  /** Default: write zero buffers. Devices with a cheaper way override this. */
  protected async writeZeroesAt(offset: number, length: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const chunk = Math.min(ZERO_CHUNK, length - done);
      await this.writeAt(offset + done, zeroBuffer(chunk));
      done += chunk;
    }
  }

  protected discardAt(offset: number, length: number): Promise<void> {
    return this.writeZeroesAt(offset, length);
  }

  protected flushDevice(): Promise<void> {
    return Promise.resolve();
  }

  protected closeDevice(): Promise<void> {
    return Promise.resolve();
  }

  read(offset: number, length: number): Promise<Buffer>;
  read<T extends Uint8Array>(offset: number, into: T): Promise<T>;
  async read(offset: number, lengthOrInto: number | Uint8Array): Promise<Uint8Array> {
    const length = typeof lengthOrInto === 'number' ? lengthOrInto : lengthOrInto.byteLength;
    this.checkOpen();
    // Range first: a bad length must be a typed error, not a failed allocation.
    this.checkRange(offset, length, 'read');
    const into = typeof lengthOrInto === 'number' ? Buffer.allocUnsafe(length) : lengthOrInto;
    const end = offset + into.byteLength;
    if (end <= this.#size) {
      if (into.byteLength > 0) await this.readAt(offset, into);
      return into;
    }
    // Only zero-extending devices get here (checkRange refused the others).
    const inside = Math.max(0, this.#size - offset);
    if (inside > 0) await this.readAt(offset, into.subarray(0, inside));
    into.fill(0, inside);
    return into;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, data.byteLength, 'write');
    if (data.byteLength === 0) return;
    await this.writeAt(offset, data);
    this.grow(offset + data.byteLength);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, length, 'write zeroes to');
    if (length === 0) return;
    await this.writeZeroesAt(offset, length);
    this.grow(offset + length);
  }

  async discard(offset: number, length: number): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, length, 'discard');
    if (length === 0) return;
    await this.discardAt(offset, length);
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.readOnly) await this.flushDevice();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.closeDevice();
  }

  private grow(end: number): void {
    if (end > this.#size) this.#size = end;
  }

  /**
   * Where the errors of the checks below point: the device's name. A device that is
   * a window into another one (SliceDevice) points into that device's file instead.
   */
  protected errorContext(): BlockIoErrorOptions {
    return { path: this.name };
  }

  protected checkOpen(): void {
    if (this.#closed) {
      throw new BlockIoError('CLOSED', 'device is closed', this.errorContext());
    }
  }

  protected checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) throw this.readOnlyError();
  }

  protected checkRange(offset: number, length: number, action: string): void {
    // Hot path (every request): plain comparisons, no strings or objects built.
    if (
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(length) &&
      offset >= 0 &&
      length >= 0 &&
      offset + length <= Number.MAX_SAFE_INTEGER &&
      (offset + length <= this.#size || this.zeroExtends)
    ) {
      return;
    }
    assertOffset(offset, `${action} offset`, { path: this.name });
    assertOffset(length, `${action} length`, { path: this.name, offset });
    const end = offset + length;
    if (!Number.isSafeInteger(end)) {
      throw new BlockIoError(
        'UNSAFE_INTEGER',
        `cannot ${action} ${length} bytes at ${offset}: the end lies beyond 2^53 - 1`,
        { path: this.name, offset },
      );
    }
    if (end > this.#size && !this.zeroExtends) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `cannot ${action} ${length} bytes at offset ${offset}: the device is only ${this.#size} bytes`,
        { path: this.name, offset },
      );
    }
  }

  private readOnlyError(): BlockIoError {
    return new BlockIoError('READ_ONLY', 'device is open read-only', this.errorContext());
  }
}

/** Splits `range` (default: the whole device) into one extent of the given kind. */
export async function* singleExtent(
  device: Pick<BlockDevice, 'size'>,
  kind: ExtentKind,
  range?: ByteRange,
): AsyncIterable<Extent> {
  const { offset, length } = clampRange(device, range);
  if (length > 0) yield { offset, length, kind };
}

/** The part of `range` inside the device (the whole device when no range is given). */
export function clampRange(device: Pick<BlockDevice, 'size'>, range?: ByteRange): ByteRange {
  if (range === undefined) return { offset: 0, length: device.size };
  const offset = Math.min(range.offset, device.size);
  const end = Math.min(range.offset + range.length, device.size);
  return { offset, length: Math.max(0, end - offset) };
}

/** The extents of a device, or a single data extent when it cannot tell. */
export function deviceExtents(device: BlockDevice, range?: ByteRange): AsyncIterable<Extent> {
  return device.extents ? device.extents(range) : singleExtent(device, 'data', range);
}
