import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { type BlockDevice, isZeroRange } from '@x/blockio';

/**
 * The checksum kept of an object's bytes: SHA-1 where it is compared with `sha1sum` on
 * another replica's host (same-epoch replicas), else CRC-32 (zlib's, about 3x cheaper:
 * SHA-1 was an eighth of a transfer's CPU, all of it on the streaming threads).
 */
export type ChecksumKind = 'sha1' | 'crc32';

/** Where a region's bytes are written: a device, or what a transfer thread opens. */
export interface RegionSink {
  readonly device: Pick<BlockDevice, 'write'>;
  readonly offset: number;
  /** The region's length in this state (the last object of a state may be cut short). */
  readonly length: number;
}

/** Where one object's bytes go: a region of a state's output. */
export interface RegionTarget extends RegionSink {
  readonly state: number;
  readonly index: number;
  readonly device: BlockDevice;
  /** The descriptor behind `device`, so that a transfer thread can write the region itself. */
  readonly fd?: number | undefined;
  /** The same file opened with O_DIRECT, when the file system allows it (see direct-writes.ts). */
  readonly directFd?: number | undefined;
}

/** Granularity of hole detection: all-zero pieces this big (aligned in the object) are not written. */
const PIECE = 64 * 1024;
/**
 * Bytes gathered before a write. SSH delivers an object in ~32 KiB packets: one write
 * per packet (or per 64 KiB piece) was a thread-pool round trip each, and cost more
 * than the copy into this buffer. A multiple of PIECE.
 */
export const GATHER = 16 * PIECE;

/**
 * Writes one object's byte stream into every region that takes it (the same head
 * object often serves the head and several snapshots), cut at each region's end,
 * skipping all-zero pieces so the output stays sparse (the regions read as zeros
 * before: a fresh output, or zeroed first on a retry). Keeps a SHA-1 of the bytes
 * (native: the JS CRC-32C it replaced cost twice the CPU, on the thread that also
 * decrypts the SSH stream).
 */
export class RegionWriter {
  readonly #targets: readonly RegionSink[];
  readonly #limit: number;
  readonly #hash: Hash | undefined;
  #crc = 0;
  #checksum: string | undefined;
  #position = 0;
  /** Non-zero pieces waiting to be written, contiguous, from object offset #gatheredAt. */
  #gathered: Buffer | undefined;
  #gatheredBytes = 0;
  #gatheredAt = 0;
  /** Where the current piece begins in #gathered, and whether it is all zero so far. */
  #pieceStart = 0;
  #pieceZero = true;

  /**
   * `gather`: a buffer of GATHER bytes to reuse (objects of one stream come one after
   * another; a new megabyte per object fed the garbage collector).
   */
  constructor(
    targets: readonly RegionSink[],
    gather?: Buffer,
    readonly checksumKind: ChecksumKind = 'sha1',
  ) {
    this.#hash = checksumKind === 'sha1' ? createHash('sha1') : undefined;
    this.#targets = targets;
    this.#gathered = gather;
    this.#limit = Math.max(0, ...targets.map((target) => target.length));
  }

  /** Bytes received (before cutting). */
  get received(): number {
    return this.#position;
  }

  /** The checksum (`checksumKind`, hex) of the bytes received, once `end` has been called. */
  get checksum(): string {
    this.#checksum ??= this.#hash?.digest('hex') ?? (this.#crc >>> 0).toString(16).padStart(8, '0');
    return this.#checksum;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#hash) this.#hash.update(chunk);
    else this.#crc = crc32(chunk, this.#crc);
    const start = this.#position;
    this.#position += chunk.byteLength;
    if (start >= this.#limit) return;
    const usable = Math.min(chunk.byteLength, this.#limit - start);
    let used = 0;
    while (used < usable) {
      const at = start + used;
      const pieceEnd = at - (at % PIECE) + PIECE;
      const take = Math.min(pieceEnd - at, usable - used);
      if (this.#gatheredBytes === 0) this.#gatheredAt = at;
      this.#gathered ??= Buffer.allocUnsafe(GATHER);
      chunk.copy(this.#gathered, this.#gatheredBytes, used, used + take);
      this.#gatheredBytes += take;
      if (this.#pieceZero && !isZeroRange(chunk, used, used + take)) this.#pieceZero = false;
      used += take;
      if (at + take === pieceEnd) await this.#endPiece();
    }
  }

  async end(): Promise<void> {
    // A last partial piece that is all zero is left out like a whole one.
    const zeroTail = this.#gatheredBytes > this.#pieceStart && this.#pieceZero;
    await this.#flush(zeroTail ? this.#pieceStart : this.#gatheredBytes);
    this.#gathered = undefined;
  }

  async #endPiece(): Promise<void> {
    if (this.#pieceZero) {
      // Left out: what came before it is written now, and gathering starts afresh.
      await this.#flush(this.#pieceStart);
    } else if (this.#gatheredBytes >= GATHER) {
      await this.#flush(this.#gatheredBytes);
    }
    this.#pieceStart = this.#gatheredBytes;
    this.#pieceZero = true;
  }

  /** Writes the first `bytes` gathered and empties the buffer. */
  async #flush(bytes: number): Promise<void> {
    const data = this.#gathered as Buffer;
    const at = this.#gatheredAt;
    this.#gatheredBytes = 0;
    this.#pieceStart = 0;
    if (bytes === 0) return;
    for (const target of this.#targets) {
      if (at >= target.length) continue;
      const part = data.subarray(0, Math.min(bytes, target.length - at));
      await target.device.write(target.offset + at, part);
    }
  }
}
