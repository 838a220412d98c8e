import { type BlockDevice, crc32cUpdate, isAllZero } from '@x/blockio';

/** Where one object's bytes go: a region of a state's output. */
export interface RegionTarget {
  readonly state: number;
  readonly index: number;
  readonly device: BlockDevice;
  readonly offset: number;
  /** The region's length in this state (the last object of a state may be cut short). */
  readonly length: number;
}

/** Granularity of hole detection: all-zero pieces this big are not written. */
const PIECE = 64 * 1024;

/**
 * Writes one object's byte stream into every region that takes it (the same head
 * object often serves the head and several snapshots), cut at each region's end,
 * skipping all-zero pieces so the output stays sparse (the regions read as zeros
 * before: a fresh output, or zeroed first on a retry). Keeps a CRC-32C of the bytes.
 */
export class RegionWriter {
  readonly #targets: readonly RegionTarget[];
  readonly #limit: number;
  #position = 0;
  #crc = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #pendingAt = 0;

  constructor(targets: readonly RegionTarget[]) {
    this.#targets = targets;
    this.#limit = Math.max(0, ...targets.map((target) => target.length));
  }

  /** Bytes received (before cutting). */
  get received(): number {
    return this.#position;
  }

  get crc(): number {
    return this.#crc >>> 0;
  }

  async write(chunk: Buffer): Promise<void> {
    this.#crc = crc32cUpdate(this.#crc, chunk);
    const start = this.#position;
    this.#position += chunk.byteLength;
    if (start >= this.#limit) return;
    const usable = chunk.subarray(0, Math.min(chunk.byteLength, this.#limit - start));
    let used = 0;
    while (used < usable.byteLength) {
      if (this.#pendingBytes === 0) this.#pendingAt = start + used;
      const take = Math.min(PIECE - this.#pendingBytes, usable.byteLength - used);
      this.#pending.push(usable.subarray(used, used + take));
      this.#pendingBytes += take;
      used += take;
      if (this.#pendingBytes === PIECE) await this.#flush();
    }
  }

  async end(): Promise<void> {
    if (this.#pendingBytes > 0) await this.#flush();
  }

  async #flush(): Promise<void> {
    const piece =
      this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
    const at = this.#pendingAt;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (isAllZero(piece)) return;
    for (const target of this.#targets) {
      if (at >= target.length) continue;
      const part = piece.subarray(0, Math.min(piece.byteLength, target.length - at));
      await target.device.write(target.offset + at, part);
    }
  }
}
