import { BaseBlockDevice, type BlockDevice, zeroBuffer } from '@x/blockio';

/**
 * e2image -c: before each block is written, the target's current contents are
 * read and the write is skipped when they already match (saves wear on flash
 * when refreshing a clone). Counts what it skipped.
 */
export class CompareBeforeWriteDevice extends BaseBlockDevice {
  readonly #target: BlockDevice;
  readonly #blockSize: number;
  #skippedBlocks = 0;
  #writtenBlocks = 0;

  constructor(target: BlockDevice, blockSize: number) {
    super({
      name: target.name,
      size: target.size,
      readOnly: false,
      zeroExtends: target.zeroExtends,
      alignment: target.alignment,
    });
    this.#target = target;
    this.#blockSize = blockSize;
  }

  /** Blocks that already held the data ("N blocks already contained the data to be copied"). */
  get skippedBlocks(): number {
    return this.#skippedBlocks;
  }

  get writtenBlocks(): number {
    return this.#writtenBlocks;
  }

  protected readAt(offset: number, into: Uint8Array): Promise<void> {
    return this.#target.read(offset, into).then(() => undefined);
  }

  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    const existing = Buffer.alloc(data.byteLength);
    const readable = Math.max(0, Math.min(data.byteLength, this.#target.size - offset));
    if (readable > 0) await this.#target.read(offset, existing.subarray(0, readable));
    const incoming = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const size = this.#blockSize;
    let runStart = -1;
    for (let at = 0; at <= data.byteLength; at += size) {
      const same =
        at === data.byteLength ||
        (at + size <= readable && existing.compare(incoming, at, at + size, at, at + size) === 0);
      if (at < data.byteLength) {
        if (same) this.#skippedBlocks++;
        else this.#writtenBlocks++;
      }
      if (!same && runStart < 0) runStart = at;
      if (same && runStart >= 0) {
        await this.#target.write(offset + runStart, incoming.subarray(runStart, at));
        runStart = -1;
      }
    }
  }

  /** copy() discards all-zero metadata runs on targets that are not known to be zero: compare those too. */
  protected override async discardAt(offset: number, length: number): Promise<void> {
    for (let at = 0; at < length; at += 1 << 20) {
      await this.writeAt(offset + at, zeroBuffer(Math.min(1 << 20, length - at)));
    }
  }

  /** Only used to give the image its final length: no comparing needed. */
  protected override writeZeroesAt(offset: number, length: number): Promise<void> {
    return this.#target.writeZeroes(offset, length);
  }

  protected override flushDevice(): Promise<void> {
    return this.#target.flush();
  }
}

/**
 * e2image -n: a target that writes nothing and reports each block a real run
 * would have written ("Writing block N").
 */
export class DryRunDevice extends BaseBlockDevice {
  readonly #blockSize: number;
  readonly #onBlock: (block: number) => void;
  #blocks = 0;

  constructor(name: string, blockSize: number, onBlock: (block: number) => void) {
    super({ name, size: 0, readOnly: false, zeroExtends: true });
    this.#blockSize = blockSize;
    this.#onBlock = onBlock;
  }

  get blocks(): number {
    return this.#blocks;
  }

  /** Reads as zeros: nothing was ever written. */
  get knownZeroed(): boolean {
    return true;
  }

  protected readAt(_offset: number, into: Uint8Array): Promise<void> {
    into.fill(0);
    return Promise.resolve();
  }

  protected override writeAt(offset: number, data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.byteLength; at += this.#blockSize) {
      this.#blocks++;
      this.#onBlock(Math.floor((offset + at) / this.#blockSize));
    }
    return Promise.resolve();
  }

  protected override writeZeroesAt(): Promise<void> {
    return Promise.resolve();
  }
}
