/**
 * Host clusters that something references at or past the end of the file: L2
 * tables of L1 entries, data clusters of L2 entries, L1 tables, the snapshot
 * table, bitmaps, header extensions. `check` does not count them (qemu-img's
 * rule), but a repair that appends new metadata must not put it there: the
 * reference would then point into the new structure.
 *
 * Kept as merged [start, end) cluster ranges: references past the end are
 * usually a few long runs (a truncated file), and absurd offsets (2^50) must
 * cost nothing, which a per-cluster array could not promise.
 */
export class ReferencesBeyondEnd {
  /** Unsorted until `#normalize`. */
  #ranges: number[] = [];
  #normalized = true;
  /** At most this many ranges kept; past it, ranges merge with their neighbours (over-approximating). */
  static readonly MAX_RANGES = 1 << 16;

  /** Records `count` clusters from `first`. */
  add(first: number, count = 1): void {
    if (count <= 0 || !Number.isFinite(first)) return;
    const ranges = this.#ranges;
    const last = ranges.length - 2;
    // Most references arrive in order: extend the previous range when they touch it.
    if (last >= 0 && first >= (ranges[last] as number) && first <= (ranges[last + 1] as number)) {
      ranges[last + 1] = Math.max(ranges[last + 1] as number, first + count);
      return;
    }
    ranges.push(first, first + count);
    this.#normalized = false;
    if (ranges.length > ReferencesBeyondEnd.MAX_RANGES * 2) this.#coarsen();
  }

  get empty(): boolean {
    return this.#ranges.length === 0;
  }

  /** One past the highest cluster referenced (0 when none). */
  get end(): number {
    this.#normalize();
    return (this.#ranges.at(-1) as number | undefined) ?? 0;
  }

  /** Clusters referenced in total (an upper bound once coarsened). */
  get clusters(): number {
    this.#normalize();
    let total = 0;
    for (let i = 0; i < this.#ranges.length; i += 2) {
      total += (this.#ranges[i + 1] as number) - (this.#ranges[i] as number);
    }
    return total;
  }

  /** The end of the first referenced range overlapping [start, end), or undefined when none does. */
  firstOverlapEnd(start: number, end: number): number | undefined {
    this.#normalize();
    const ranges = this.#ranges;
    for (let i = 0; i < ranges.length; i += 2) {
      if ((ranges[i + 1] as number) <= start) continue;
      if ((ranges[i] as number) >= end) return undefined;
      return ranges[i + 1] as number;
    }
    return undefined;
  }

  /** Sorted, merged [start, end) pairs. */
  ranges(): number[] {
    this.#normalize();
    return [...this.#ranges];
  }

  #normalize(): void {
    if (this.#normalized) return;
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < this.#ranges.length; i += 2) {
      pairs.push([this.#ranges[i] as number, this.#ranges[i + 1] as number]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    const merged: number[] = [];
    for (const [start, end] of pairs) {
      const last = merged.length - 1;
      if (last > 0 && start <= (merged[last] as number)) {
        merged[last] = Math.max(merged[last] as number, end);
      } else {
        merged.push(start, end);
      }
    }
    this.#ranges = merged;
    this.#normalized = true;
  }

  /** Halves the number of ranges by merging neighbours (covering the gaps between them). */
  #coarsen(): void {
    this.#normalize();
    const ranges = this.#ranges;
    const coarse: number[] = [];
    for (let i = 0; i < ranges.length; i += 4) {
      const end = i + 3 < ranges.length ? ranges[i + 3] : ranges[i + 1];
      coarse.push(ranges[i] as number, end as number);
    }
    this.#ranges = coarse;
  }
}
