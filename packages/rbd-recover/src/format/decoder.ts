import { RbdRecoverError, type RbdRecoverErrorCode } from '../errors.js';

/**
 * A cursor over a Ceph-encoded value (little-endian, `ENCODE_START` envelopes,
 * u32-length strings and containers). Every read is bounds-checked: a short value
 * is a typed error naming the structure and the offset, never a RangeError.
 */
export class CephDecoder {
  readonly #bytes: Buffer;
  #offset: number;
  readonly #end: number;
  readonly #code: RbdRecoverErrorCode;
  readonly #structure: string;
  readonly #path: string | undefined;

  constructor(
    bytes: Uint8Array,
    code: RbdRecoverErrorCode,
    structure: string,
    path?: string,
    offset = 0,
    end = bytes.byteLength,
  ) {
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
    this.#end = end;
    this.#code = code;
    this.#structure = structure;
    this.#path = path;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#end - this.#offset;
  }

  fail(message: string, at = this.#offset): RbdRecoverError {
    return new RbdRecoverError(this.#code, message, {
      path: this.#path,
      offset: at,
      structure: this.#structure,
    });
  }

  #take(length: number, what: string): number {
    if (length < 0 || this.#offset + length > this.#end) {
      throw this.fail(
        `${what} needs ${length} bytes, only ${Math.max(0, this.#end - this.#offset)} left`,
      );
    }
    const at = this.#offset;
    this.#offset += length;
    return at;
  }

  u8(what = 'u8'): number {
    return this.#bytes.readUInt8(this.#take(1, what));
  }

  u32(what = 'u32'): number {
    return this.#bytes.readUInt32LE(this.#take(4, what));
  }

  i32(what = 'i32'): number {
    return this.#bytes.readInt32LE(this.#take(4, what));
  }

  u64(what = 'u64'): bigint {
    return this.#bytes.readBigUInt64LE(this.#take(8, what));
  }

  i64(what = 'i64'): bigint {
    return this.#bytes.readBigInt64LE(this.#take(8, what));
  }

  /** A u64 that must fit a JS number (sizes, offsets). */
  safeU64(what: string): number {
    const at = this.#offset;
    const value = this.u64(what);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw this.fail(`${what} ${value} is beyond 2^53 - 1`, at);
    }
    return Number(value);
  }

  bytes(length: number, what = 'bytes'): Buffer {
    const at = this.#take(length, what);
    return this.#bytes.subarray(at, at + length);
  }

  /** u32 length + bytes. */
  lengthPrefixed(what: string): Buffer {
    const length = this.u32(`${what} length`);
    return this.bytes(length, what);
  }

  string(what: string): string {
    return this.lengthPrefixed(what).toString('utf8');
  }

  /** A u32 element count, checked against what is left (each element ≥ `minimumSize` bytes). */
  count(what: string, minimumSize: number): number {
    const at = this.#offset;
    const count = this.u32(`${what} count`);
    if (count * minimumSize > this.remaining) {
      throw this.fail(
        `${what} count ${count} does not fit in the ${this.remaining} bytes left`,
        at,
      );
    }
    return count;
  }

  /**
   * ENCODE_START's envelope: u8 version, u8 compat, u32 length. Returns the version and
   * a decoder limited to the body; `this` moves past the body.
   */
  envelope(what: string): { version: number; compat: number; body: CephDecoder } {
    const version = this.u8(`${what} version`);
    const compat = this.u8(`${what} compat version`);
    const length = this.u32(`${what} length`);
    const start = this.#take(length, what);
    return {
      version,
      compat,
      body: new CephDecoder(
        this.#bytes,
        this.#code,
        this.#structure,
        this.#path,
        start,
        start + length,
      ),
    };
  }
}
