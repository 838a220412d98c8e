import { Writable } from 'node:stream';
import { type ByteRange, clampRange, type Extent, MemoryDevice } from '@x/blockio';

/** A writable stream that keeps what it is given; `bytes()` joins it. */
export function collector(): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return Object.assign(stream, { bytes: () => Buffer.concat(chunks) });
}

/**
 * A memory disk that says which objects are allocated (extents) and records every
 * byte range read, so tests can prove what was never read.
 */
export class TrackedDisk extends MemoryDevice {
  readonly reads: ByteRange[] = [];
  readonly #allocated: (offset: number) => boolean;
  readonly #granularity: number;

  constructor(
    bytes: Uint8Array,
    allocated: (offset: number) => boolean,
    granularity: number,
    name = 'disk',
  ) {
    super(bytes, { readOnly: true, name });
    this.#allocated = allocated;
    this.#granularity = granularity;
  }

  override read(offset: number, length: number): Promise<Buffer>;
  override read<T extends Uint8Array>(offset: number, into: T): Promise<T>;
  override read(offset: number, lengthOrInto: number | Uint8Array): Promise<Uint8Array> {
    const length = typeof lengthOrInto === 'number' ? lengthOrInto : lengthOrInto.byteLength;
    this.reads.push({ offset, length });
    return super.read(offset, lengthOrInto as Uint8Array);
  }

  override async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const { offset, length } = clampRange(this, range);
    const end = offset + length;
    let position = offset;
    while (position < end) {
      const unitEnd = Math.min(
        end,
        (Math.floor(position / this.#granularity) + 1) * this.#granularity,
      );
      yield {
        offset: position,
        length: unitEnd - position,
        kind: this.#allocated(position) ? 'data' : 'unallocated',
      };
      position = unitEnd;
    }
  }
}
