import {
  BaseBlockDevice,
  type BlockDevice,
  type ByteRange,
  deviceExtents,
  type Extent,
} from '../../src/index.js';

/**
 * Passes reads through to `parent` and calls `onRead(bytesReadSoFar)` after each,
 * so a test can act (abort, fail) at an exact point of a copy, without timing.
 */
export class ObservedDevice extends BaseBlockDevice {
  readonly parent: BlockDevice;
  readonly onRead: (bytesReadSoFar: number) => void;
  #bytesRead = 0;

  constructor(parent: BlockDevice, onRead: (bytesReadSoFar: number) => void) {
    super({ name: parent.name, size: parent.size, readOnly: true });
    this.parent = parent;
    this.onRead = onRead;
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    await this.parent.read(offset, into);
    this.#bytesRead += into.byteLength;
    this.onRead(this.#bytesRead);
  }

  extents(range?: ByteRange): AsyncIterable<Extent> {
    return deviceExtents(this.parent, range);
  }
}
