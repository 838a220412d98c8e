import { BaseBlockDevice, type ByteRange, clampRange, type Extent } from './block-device.js';
import { BlockIoError } from './errors.js';

export interface MemoryDeviceOptions {
  name?: string;
  readOnly?: boolean;
  /** Let writes past the end grow the device. */
  zeroExtends?: boolean;
}

/**
 * A device backed by a Buffer; for tests, small images and staging metadata.
 * Writable unless `readOnly` (unlike FileDevice, which opens read-only).
 *
 * Bytes passed in are copied: the device owns its buffer, because a zero-extending
 * device that grows must move to a larger one, and wrapped caller bytes would then
 * silently stop receiving writes. Read the contents through `bytes`.
 */
export class MemoryDevice extends BaseBlockDevice {
  #bytes: Buffer;

  constructor(sizeOrBytes: number | Uint8Array, options: MemoryDeviceOptions = {}) {
    const bytes =
      typeof sizeOrBytes === 'number' ? Buffer.alloc(sizeOrBytes) : Buffer.from(sizeOrBytes);
    super({
      name: options.name ?? 'memory',
      size: bytes.byteLength,
      readOnly: options.readOnly ?? false,
      zeroExtends: options.zeroExtends ?? false,
      queueDepth: 1,
    });
    this.#bytes = bytes;
  }

  /**
   * The device's current contents: a view (writes through it reach the device),
   * valid until a write grows the device; read it again after that.
   */
  get bytes(): Buffer {
    return this.#bytes.subarray(0, this.size);
  }

  protected readAt(offset: number, into: Uint8Array): Promise<void> {
    into.set(this.#bytes.subarray(offset, offset + into.byteLength));
    return Promise.resolve();
  }

  protected override writeAt(offset: number, data: Uint8Array): Promise<void> {
    this.ensureCapacity(offset + data.byteLength);
    this.#bytes.set(data, offset);
    return Promise.resolve();
  }

  protected override writeZeroesAt(offset: number, length: number): Promise<void> {
    this.ensureCapacity(offset + length);
    this.#bytes.fill(0, offset, offset + length);
    return Promise.resolve();
  }

  private ensureCapacity(end: number): void {
    if (end <= this.#bytes.byteLength) return;
    if (end > 2 ** 31) {
      throw new BlockIoError('UNSUPPORTED', `a memory device cannot grow to ${end} bytes`, {
        path: this.name,
      });
    }
    const grown = Buffer.alloc(Math.max(end, this.#bytes.byteLength * 2));
    grown.set(this.#bytes);
    this.#bytes = grown;
  }

  async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const { offset, length } = clampRange(this, range);
    if (length > 0) yield { offset, length, kind: 'data' };
  }
}

/** A read-only device of the given size that reads as zeros everywhere. */
export class ZeroDevice extends BaseBlockDevice {
  constructor(size: number, name = 'zeroes') {
    super({ name, size, readOnly: true, queueDepth: 1 });
  }

  protected readAt(_offset: number, into: Uint8Array): Promise<void> {
    into.fill(0);
    return Promise.resolve();
  }

  async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const { offset, length } = clampRange(this, range);
    if (length > 0) yield { offset, length, kind: 'unallocated' };
  }
}
