import type { ByteRange } from './block-device.js';
import { BlockIoError } from './errors.js';

/**
 * A set of byte offsets stored as sorted, disjoint, non-touching [start, end)
 * intervals: "these are the metadata blocks", "these objects changed". Adds are
 * buffered and merged in one sort when the set is next read, so building a set
 * of millions of ranges in any order costs O(n log n).
 */
export class ExtentSet implements Iterable<ByteRange> {
  #starts: number[] = [];
  #ends: number[] = [];
  #pendingStarts: number[] = [];
  #pendingEnds: number[] = [];

  static from(ranges: Iterable<ByteRange>): ExtentSet {
    const set = new ExtentSet();
    for (const range of ranges) set.add(range.offset, range.length);
    return set;
  }

  /** Adds [offset, offset + length). Empty ranges are ignored. */
  add(offset: number, length: number): this {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0
    ) {
      throw new BlockIoError('OUT_OF_RANGE', `invalid extent ${offset}+${length}`);
    }
    if (length === 0) return this;
    const end = offset + length;
    if (!Number.isSafeInteger(end)) {
      throw new BlockIoError('UNSAFE_INTEGER', `extent ${offset}+${length} ends beyond 2^53 - 1`);
    }
    // Fast path: appending in ascending order (the common case) needs no sort.
    if (this.#pendingStarts.length === 0) {
      const last = this.#ends.length - 1;
      const lastEnd = this.#ends[last];
      if (lastEnd === undefined || offset > lastEnd) {
        this.#starts.push(offset);
        this.#ends.push(end);
        return this;
      }
      if (offset >= (this.#starts[last] as number)) {
        if (end > lastEnd) this.#ends[last] = end;
        return this;
      }
    }
    this.#pendingStarts.push(offset);
    this.#pendingEnds.push(end);
    return this;
  }

  addRange(range: ByteRange): this {
    return this.add(range.offset, range.length);
  }

  /** Number of disjoint ranges. */
  get rangeCount(): number {
    this.normalize();
    return this.#starts.length;
  }

  /** Total bytes covered. */
  get totalBytes(): number {
    this.normalize();
    let total = 0;
    for (let i = 0; i < this.#starts.length; i++) {
      total += (this.#ends[i] as number) - (this.#starts[i] as number);
    }
    return total;
  }

  get isEmpty(): boolean {
    return this.rangeCount === 0;
  }

  /** One past the highest offset in the set (0 when empty). */
  get end(): number {
    this.normalize();
    return this.#ends[this.#ends.length - 1] ?? 0;
  }

  has(offset: number): boolean {
    this.normalize();
    const index = this.lastStartAtOrBefore(offset);
    return index >= 0 && offset < (this.#ends[index] as number);
  }

  /** True when every byte of [offset, offset + length) is in the set. */
  covers(offset: number, length: number): boolean {
    if (length === 0) return true;
    this.normalize();
    const index = this.lastStartAtOrBefore(offset);
    return index >= 0 && offset + length <= (this.#ends[index] as number);
  }

  /** True when some byte of [offset, offset + length) is in the set. */
  overlaps(offset: number, length: number): boolean {
    if (length === 0) return false;
    this.normalize();
    const index = this.lastStartAtOrBefore(offset + length - 1);
    return index >= 0 && (this.#ends[index] as number) > offset;
  }

  union(other: ExtentSet): ExtentSet {
    return combine(this, other, (a, b) => a || b);
  }

  intersect(other: ExtentSet): ExtentSet {
    return combine(this, other, (a, b) => a && b);
  }

  subtract(other: ExtentSet): ExtentSet {
    return combine(this, other, (a, b) => a && !b);
  }

  clone(): ExtentSet {
    this.normalize();
    const copy = new ExtentSet();
    copy.#starts = [...this.#starts];
    copy.#ends = [...this.#ends];
    return copy;
  }

  *[Symbol.iterator](): Iterator<ByteRange> {
    this.normalize();
    for (let i = 0; i < this.#starts.length; i++) {
      const offset = this.#starts[i] as number;
      yield { offset, length: (this.#ends[i] as number) - offset };
    }
  }

  /** The ranges clipped to [offset, offset + length). */
  *within(offset: number, length: number): Iterable<ByteRange> {
    this.normalize();
    const end = offset + length;
    let index = Math.max(0, this.lastStartAtOrBefore(offset));
    for (; index < this.#starts.length; index++) {
      const start = Math.max(offset, this.#starts[index] as number);
      const stop = Math.min(end, this.#ends[index] as number);
      if (start >= end) return;
      if (stop > start) yield { offset: start, length: stop - start };
    }
  }

  toJSON(): Array<[number, number]> {
    return [...this].map((range) => [range.offset, range.length]);
  }

  private lastStartAtOrBefore(offset: number): number {
    let low = 0;
    let high = this.#starts.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if ((this.#starts[middle] as number) <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  private normalize(): void {
    if (this.#pendingStarts.length === 0) return;
    const count = this.#starts.length + this.#pendingStarts.length;
    const order = new Float64Array(count * 2);
    const all = [
      [this.#starts, this.#ends],
      [this.#pendingStarts, this.#pendingEnds],
    ] as const;
    let k = 0;
    for (const [starts, ends] of all) {
      for (let i = 0; i < starts.length; i++) {
        order[k++] = starts[i] as number;
        order[k++] = ends[i] as number;
      }
    }
    const indices = Array.from({ length: count }, (_, i) => i);
    indices.sort((a, b) => (order[a * 2] as number) - (order[b * 2] as number));
    const starts: number[] = [];
    const ends: number[] = [];
    for (const i of indices) {
      const start = order[i * 2] as number;
      const end = order[i * 2 + 1] as number;
      const last = ends.length - 1;
      if (last >= 0 && start <= (ends[last] as number)) {
        if (end > (ends[last] as number)) ends[last] = end;
      } else {
        starts.push(start);
        ends.push(end);
      }
    }
    this.#starts = starts;
    this.#ends = ends;
    this.#pendingStarts = [];
    this.#pendingEnds = [];
  }
}

/** Sweeps both sets' boundaries and keeps the spans where `keep(inA, inB)` holds. */
function combine(
  a: ExtentSet,
  b: ExtentSet,
  keep: (inA: boolean, inB: boolean) => boolean,
): ExtentSet {
  const left = [...a];
  const right = [...b];
  const result = new ExtentSet();
  let i = 0;
  let j = 0;
  let position = 0;
  while (i < left.length || j < right.length) {
    const l = left[i];
    const r = right[j];
    const lStart = l ? l.offset : Number.POSITIVE_INFINITY;
    const lEnd = l ? l.offset + l.length : Number.POSITIVE_INFINITY;
    const rStart = r ? r.offset : Number.POSITIVE_INFINITY;
    const rEnd = r ? r.offset + r.length : Number.POSITIVE_INFINITY;
    position = Math.max(position, Math.min(lStart, rStart));
    const inA = l !== undefined && position >= lStart;
    const inB = r !== undefined && position >= rStart;
    let next = Math.min(inA ? lEnd : lStart, inB ? rEnd : rStart);
    if (!inA && !inB) {
      position = next;
      continue;
    }
    if (next === Number.POSITIVE_INFINITY) next = position;
    if (keep(inA, inB) && next > position) result.add(position, next - position);
    position = next;
    if (l && position >= lEnd) i++;
    if (r && position >= rEnd) j++;
  }
  return result;
}
