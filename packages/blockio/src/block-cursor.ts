import { type BlockDevice, type ByteRange, deviceExtents, type Extent } from './block-device.js';

export interface Chunk {
  offset: number;
  length: number;
  kind: Extent['kind'];
}

/** The extents of every range of `source`, in order. */
export async function* extentsOfRanges(
  source: BlockDevice,
  ranges: readonly ByteRange[],
): AsyncGenerator<Extent> {
  for (const range of ranges) yield* deviceExtents(source, range);
}

/**
 * Hands out a device's extents cut at `blockSize` boundaries to several workers.
 * `take()` is synchronous while the current extent lasts (the common case, no
 * promise); `refill()` pulls the next extent, one caller at a time, since async
 * generators must not be advanced concurrently.
 */
export class BlockCursor {
  readonly #extents: AsyncIterator<Extent>;
  readonly #blockSize: number;
  readonly #cutHoles: boolean;
  #kind: Extent['kind'] = 'data';
  #position = 0;
  #end = 0;
  #pulling: Promise<Chunk | undefined> | undefined;
  #done = false;

  constructor(extents: AsyncIterable<Extent>, blockSize: number, cutHoles: boolean) {
    this.#extents = extents[Symbol.asyncIterator]();
    this.#blockSize = blockSize;
    this.#cutHoles = cutHoles;
  }

  /** The next block of the current extent, or undefined when it is used up. */
  take(): Chunk | undefined {
    if (this.#position >= this.#end) return undefined;
    const offset = this.#position;
    const cut =
      this.#kind === 'data' || this.#cutHoles
        ? Math.min(this.#end, offset + this.#blockSize - (offset % this.#blockSize))
        : this.#end;
    this.#position = cut;
    return { offset, length: cut - offset, kind: this.#kind };
  }

  /** Moves to the next non-empty extent and takes its first block; undefined at the end. */
  async refill(): Promise<Chunk | undefined> {
    while (this.#pulling) {
      await this.#pulling;
      const chunk = this.take();
      if (chunk !== undefined || this.#done) return chunk;
    }
    this.#pulling = this.#pull();
    try {
      return await this.#pulling;
    } finally {
      this.#pulling = undefined;
    }
  }

  async #pull(): Promise<Chunk | undefined> {
    while (!this.#done) {
      const step = await this.#extents.next();
      if (step.done) {
        this.#done = true;
        return undefined;
      }
      const extent = step.value;
      if (extent.length <= 0) continue;
      this.#kind = extent.kind;
      this.#position = extent.offset;
      this.#end = extent.offset + extent.length;
      return this.take();
    }
    return undefined;
  }

  /** Stops the extent source early (after a failure). */
  async close(): Promise<void> {
    this.#done = true;
    await this.#extents.return?.();
  }
}
