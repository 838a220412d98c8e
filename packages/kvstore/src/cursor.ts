import { type KvStoreErrorCode, kvError, type Location } from './errors.js';

/**
 * Reads the LevelDB/RocksDB coding primitives (coding.h: varint32/64, fixed32/64,
 * length-prefixed slices) from a buffer, throwing a typed error that names the file,
 * the absolute byte offset and the structure when the bytes run out or overflow.
 */
export class Cursor {
  position: number;

  /**
   * @param bytes the buffer
   * @param where file and structure; `where.offset` is the file offset of `bytes[0]`
   * @param code the error code for a malformed field
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly where: Location,
    readonly code: KvStoreErrorCode,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.position = start;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  fail(message: string, at = this.position): never {
    throw kvError(this.code, message, { ...this.where, offset: this.where.offset + at });
  }

  u8(what: string): number {
    if (this.position >= this.end) this.fail(`${what}: expected 1 byte, the structure ends`);
    return this.bytes[this.position++] as number;
  }

  /** A varint32 (at most 5 bytes, value below 2^32). */
  varint32(what: string): number {
    const start = this.position;
    let result = 0;
    for (let shift = 0; shift <= 28; shift += 7) {
      if (this.position >= this.end) this.fail(`${what}: varint32 runs past the end`, start);
      const byte = this.bytes[this.position++] as number;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (result > 0xffffffff) this.fail(`${what}: varint32 overflows 32 bits`, start);
        return result;
      }
    }
    return this.fail(`${what}: varint32 longer than 5 bytes`, start);
  }

  /** A varint64 as a bigint (sequence numbers, file numbers from the future). */
  varint64Big(what: string): bigint {
    const start = this.position;
    let result = 0n;
    for (let shift = 0n; shift <= 63n; shift += 7n) {
      if (this.position >= this.end) this.fail(`${what}: varint64 runs past the end`, start);
      const byte = this.bytes[this.position++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        if (result >= 1n << 64n) this.fail(`${what}: varint64 overflows 64 bits`, start);
        return result;
      }
    }
    return this.fail(`${what}: varint64 longer than 10 bytes`, start);
  }

  /** A varint64 that must fit in a safe integer (offsets, sizes, file numbers). */
  varint64(what: string): number {
    const start = this.position;
    // Fast path: up to 7 bytes (49 bits) never leaves the safe range.
    let result = 0;
    for (let shift = 0; shift < 49; shift += 7) {
      if (this.position >= this.end) this.fail(`${what}: varint64 runs past the end`, start);
      const byte = this.bytes[this.position++] as number;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    this.position = start;
    const big = this.varint64Big(what);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.fail(`${what} is ${big}, beyond 2^53 - 1`, start);
    }
    return Number(big);
  }

  /** RocksDB's zigzag-coded signed varint64 (index block handle deltas). */
  varsigned64(what: string): number {
    const unsigned = this.varint64Big(what);
    const value = (unsigned >> 1n) ^ -(unsigned & 1n);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.fail(`${what} is ${value}, beyond 2^53 - 1`);
    }
    return Number(value);
  }

  fixed32(what: string): number {
    if (this.remaining < 4) this.fail(`${what}: expected 4 bytes, ${this.remaining} left`);
    const b = this.bytes;
    const p = this.position;
    this.position += 4;
    return (
      ((b[p] as number) |
        ((b[p + 1] as number) << 8) |
        ((b[p + 2] as number) << 16) |
        ((b[p + 3] as number) << 24)) >>>
      0
    );
  }

  fixed64Big(what: string): bigint {
    const low = this.fixed32(what);
    const high = this.fixed32(what);
    return (BigInt(high) << 32n) | BigInt(low);
  }

  /** `length` bytes as a view into the buffer (copy it to keep it). */
  take(length: number, what: string): Uint8Array {
    if (length > this.remaining) {
      this.fail(`${what}: needs ${length} bytes, only ${this.remaining} left`);
    }
    const slice = this.bytes.subarray(this.position, this.position + length);
    this.position += length;
    return slice;
  }

  /** A varint32 length then that many bytes (LevelDB's GetLengthPrefixedSlice). */
  lengthPrefixed(what: string): Uint8Array {
    const length = this.varint32(`${what} length`);
    return this.take(length, what);
  }
}

/** Copies a view into a Buffer of its own, so it outlives the block it came from. */
export function copyBytes(view: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(view.length);
  copy.set(view);
  return copy;
}
