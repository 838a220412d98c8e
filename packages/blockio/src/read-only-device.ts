import {
  BaseBlockDevice,
  type BlockDevice,
  type ByteRange,
  clampRange,
  type DeviceAlignment,
  type Extent,
  singleExtent,
} from './block-device.js';
import { BlockIoError, fromSystemError } from './errors.js';

export interface ReadOnlyDeviceOptions {
  /** Path or description, used in error messages ("host:/var/lib/ceph/…/obj"). */
  name: string;
  size: number;
  /** See BlockDevice.queueDepth. Default 4 (a network round trip per request). */
  queueDepth?: number | undefined;
  alignment?: Partial<DeviceAlignment> | undefined;
  /**
   * Reads up to `into.byteLength` bytes at `offset` into `into` and resolves to how
   * many it read, as pread(2) and an sftp handle do: a short count is fine (the rest
   * is asked for again), 0 means the data ends there.
   */
  read(offset: number, into: Uint8Array): Promise<number>;
  /** What the device holds where, if the source can tell (a range already clamped). */
  extents?: ((range: ByteRange) => AsyncIterable<Extent>) | undefined;
  /** Releases the source (closes the sftp handle); called once, by `close()`. */
  close?: (() => Promise<void>) | undefined;
}

/**
 * A read-only BlockDevice over an async read function, for sources that are not
 * files on this machine (an object file read over SSH). The base class checks the
 * ranges; this loop turns the source's short reads into whole ones.
 */
export function readOnlyDevice(options: ReadOnlyDeviceOptions): BlockDevice {
  return new FunctionReadDevice(options);
}

class FunctionReadDevice extends BaseBlockDevice {
  readonly #source: ReadOnlyDeviceOptions;

  constructor(source: ReadOnlyDeviceOptions) {
    super({
      name: source.name,
      size: source.size,
      readOnly: true,
      queueDepth: source.queueDepth,
      alignment: source.alignment,
    });
    this.#source = source;
  }

  /** The source's extents when it can tell, else one data extent (as deviceExtents gives). */
  extents(range?: ByteRange): AsyncIterable<Extent> {
    const clamped = clampRange(this, range);
    return this.#source.extents?.(clamped) ?? singleExtent(this, 'data', clamped);
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.byteLength) {
      const at = offset + done;
      const wanted = into.byteLength - done;
      let count: number;
      try {
        count = await this.#source.read(at, into.subarray(done));
      } catch (error) {
        throw fromSystemError(error, `read ${wanted} bytes`, { path: this.name, offset: at });
      }
      if (!Number.isSafeInteger(count) || count < 0 || count > wanted) {
        throw new BlockIoError(
          'INVALID_ARGUMENT',
          `the read function returned ${String(count)} for a request of ${wanted} bytes`,
          { path: this.name, offset: at },
        );
      }
      if (count === 0) {
        throw new BlockIoError(
          'SHORT_READ',
          `the source ended after ${done} of the ${into.byteLength} bytes asked for at ${offset} (the device is ${this.size} bytes)`,
          { path: this.name, offset: at },
        );
      }
      done += count;
    }
  }

  protected override async closeDevice(): Promise<void> {
    await this.#source.close?.();
  }
}
