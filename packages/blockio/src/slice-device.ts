import {
  BaseBlockDevice,
  type BlockDevice,
  type ByteRange,
  clampRange,
  deviceExtents,
  type Extent,
} from './block-device.js';
import { BlockIoError } from './errors.js';
import { assertOffset } from './safe-number.js';

export interface SliceOptions {
  /** Length of the window; default: to the end of the parent. */
  length?: number;
  readOnly?: boolean;
  /** Closing the slice closes the parent too. */
  ownsParent?: boolean;
}

/**
 * A window of another device starting at `start` (e2image's -o/-O, a partition
 * inside a disk image). Offsets are relative to the window.
 */
export class SliceDevice extends BaseBlockDevice {
  readonly parent: BlockDevice;
  readonly start: number;
  readonly #ownsParent: boolean;

  constructor(parent: BlockDevice, start: number, options: SliceOptions = {}) {
    assertOffset(start, 'slice offset', { path: parent.name });
    const available = parent.zeroExtends ? Number.MAX_SAFE_INTEGER - start : parent.size - start;
    if (available < 0) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `offset ${start} lies beyond the end of the device (${parent.size} bytes)`,
        { path: parent.name, offset: start },
      );
    }
    const length = options.length ?? Math.max(0, parent.size - start);
    if (length > available) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `a window of ${length} bytes at offset ${start} does not fit in ${parent.size} bytes`,
        { path: parent.name, offset: start },
      );
    }
    super({
      name: start === 0 ? parent.name : `${parent.name}@${start}`,
      size: length,
      readOnly: options.readOnly ?? parent.readOnly,
      zeroExtends: parent.zeroExtends && options.length === undefined,
      alignment: parent.alignment,
      queueDepth: parent.queueDepth,
    });
    this.parent = parent;
    this.start = start;
    this.#ownsParent = options.ownsParent ?? false;
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    await this.parent.read(this.start + offset, into);
  }

  protected override writeAt(offset: number, data: Uint8Array): Promise<void> {
    return this.parent.write(this.start + offset, data);
  }

  protected override writeZeroesAt(offset: number, length: number): Promise<void> {
    return this.parent.writeZeroes(this.start + offset, length);
  }

  protected override discardAt(offset: number, length: number): Promise<void> {
    return this.parent.discard(this.start + offset, length);
  }

  protected override flushDevice(): Promise<void> {
    return this.parent.flush();
  }

  protected override async closeDevice(): Promise<void> {
    if (this.#ownsParent) await this.parent.close();
  }

  async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const { offset, length } = clampRange(this, range);
    if (length === 0) return;
    for await (const extent of deviceExtents(this.parent, {
      offset: this.start + offset,
      length,
    })) {
      yield { ...extent, offset: extent.offset - this.start };
    }
  }
}
