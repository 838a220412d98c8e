/**
 * What a salvaging read (`convert --salvage`) zero-filled instead of refusing:
 * the guest ranges whose bytes are not the image's, and why. QEMU reads these
 * ranges the same way without a word (a table or data cluster past the end of
 * the file reads as zeros); a user recovering data needs to know which bytes of
 * the result are not real.
 */

export type SalvageReason =
  /** The L2 table lies (partly) past the end of the file: its missing entries read as unallocated. */
  | 'l2-table-past-end'
  /** A data cluster lies (partly) past the end of the file: its missing bytes read as zeros. */
  | 'data-past-end';

export interface SalvagedRange {
  /** Guest byte offset of the range. */
  guestOffset: number;
  length: number;
  reason: SalvageReason;
  /** The damaged structure, e.g. "L1 table entry 3" or "L2 table at 0x50000 entry 7". */
  structure: string;
  /** Host offset the structure points to (the L2 table or the data cluster). */
  hostOffset: number;
  /** The image file holding the structure (a backing file may be the damaged one). */
  path: string;
  /** What the range reads as: zeros, or (missing L2 entries) the backing file or zeros. */
  readsAs: 'zeros' | 'unallocated';
}

/** Detailed ranges kept; beyond that only the totals grow (a destroyed image must not exhaust memory). */
const MAX_RANGES = 10_000;

export class SalvageLog {
  readonly #ranges: SalvagedRange[] = [];
  #totalBytes = 0;
  #count = 0;

  /** Records a range (a copy maps each guest range once; adjacent ones merge). */
  record(range: SalvagedRange): void {
    this.#count++;
    this.#totalBytes += range.length;
    const last = this.#ranges[this.#ranges.length - 1];
    if (
      last !== undefined &&
      last.reason === range.reason &&
      last.path === range.path &&
      last.structure === range.structure &&
      last.guestOffset + last.length === range.guestOffset
    ) {
      last.length += range.length;
      return;
    }
    if (this.#ranges.length < MAX_RANGES) this.#ranges.push({ ...range });
  }

  /** Zero-filled ranges in guest order (at most 10,000; see `truncated`). */
  ranges(): SalvagedRange[] {
    return [...this.#ranges].sort((a, b) => a.guestOffset - b.guestOffset);
  }

  /** Guest bytes zero-filled, in total. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  get truncated(): boolean {
    return this.#count > 0 && this.#ranges.length >= MAX_RANGES;
  }

  get isEmpty(): boolean {
    return this.#count === 0;
  }
}
