import {
  BaseBlockDevice,
  type BlockDevice,
  type ByteRange,
  clampRange,
  deviceExtents,
  type Extent,
} from './block-device.js';
import { BlockIoError, type BlockIoErrorOptions } from './errors.js';
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
 *
 * The slice's own errors (a range outside the window, read-only, closed) name the
 * file under the window and the absolute offset in it, as the parent's errors do,
 * so an error from either says where to look in the same terms. `name` stays
 * `parent@start`: code above the slice reports window-relative offsets under it.
 */
export class SliceDevice extends BaseBlockDevice {
  readonly parent: BlockDevice;
  readonly start: number;
  readonly #ownsParent: boolean;
  /** The device at the bottom of a chain of slices, whose name is the file's. */
  readonly #file: BlockDevice;
  /** Where the window starts in `#file`. */
  readonly #fileStart: number;

  constructor(parent: BlockDevice, start: number, options: SliceOptions = {}) {
    // Errors name the file under a chain of slices and the offset in it, as the slice's later ones do.
    const file = parent instanceof SliceDevice ? parent.#file : parent;
    const parentStart = parent instanceof SliceDevice ? parent.#fileStart : 0;
    const where = { path: file.name, structure: `slice at ${start} of ${parent.name}` };
    assertOffset(start, 'slice offset', where);
    const fileStart = parentStart + start;
    if (!Number.isSafeInteger(fileStart)) {
      throw new BlockIoError(
        'UNSAFE_INTEGER',
        `a slice at ${start} of a window at ${parentStart} starts beyond 2^53 - 1`,
        where,
      );
    }
    const available = parent.zeroExtends
      ? Number.MAX_SAFE_INTEGER - fileStart
      : parent.size - start;
    if (available < 0) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `offset ${start} lies beyond the end of ${parent.name} (${parent.size} bytes)`,
        { ...where, offset: fileStart },
      );
    }
    const length = options.length ?? Math.max(0, parent.size - start);
    assertOffset(length, 'slice length', { ...where, offset: fileStart });
    if (length > available) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `a window of ${length} bytes at offset ${start} does not fit in ${parent.name} (${parent.size} bytes)`,
        { ...where, offset: fileStart },
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
    this.#file = file;
    this.#fileStart = fileStart;
  }

  protected override errorContext(): BlockIoErrorOptions {
    return {
      path: this.#file.name,
      structure: `slice of ${this.size} bytes at ${this.#fileStart}`,
    };
  }

  protected override checkRange(offset: number, length: number, action: string): void {
    try {
      super.checkRange(offset, length, action);
    } catch {
      // The base class speaks in window offsets under the slice's name; say it again in the file's.
      this.throwRangeError(offset, length, action);
    }
    // A growing window still ends where the file's offsets do.
    if (offset + length > Number.MAX_SAFE_INTEGER - this.#fileStart) {
      this.throwRangeError(offset, length, action);
    }
  }

  private throwRangeError(offset: number, length: number, action: string): never {
    const context = this.errorContext();
    assertOffset(offset, `${action} offset in the slice`, context);
    const at = this.fileOffset(offset);
    assertOffset(length, `${action} length`, { ...context, offset: at });
    if (!Number.isSafeInteger(offset + length + this.#fileStart)) {
      throw new BlockIoError(
        'UNSAFE_INTEGER',
        `cannot ${action} ${length} bytes at ${at}: the end lies beyond 2^53 - 1`,
        { ...context, offset: at },
      );
    }
    throw new BlockIoError(
      'OUT_OF_RANGE',
      `cannot ${action} ${length} bytes at offset ${at}: the slice ends at ${this.fileOffset(this.size)}`,
      { ...context, offset: at },
    );
  }

  /** `offset` in the window as an offset in the file, exact even past 2^53 - 1. */
  private fileOffset(offset: number): number | bigint {
    const at = this.#fileStart + offset;
    return Number.isSafeInteger(at) ? at : BigInt(this.#fileStart) + BigInt(offset);
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
