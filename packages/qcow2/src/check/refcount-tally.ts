/**
 * A compact in-memory refcount array for `check` and `repair`: how many times
 * each host cluster is referenced. qemu-img keeps one refcount_bits-wide
 * counter per cluster of the file (32 MiB for a 1 TiB image at 16 bits); this
 * keeps memory proportional to how irregular the image is instead:
 *
 * - The cluster space is cut into chunks of 65536 clusters.
 * - A chunk starts as a short list of runs of clusters referenced exactly once.
 *   Images are mostly laid out in long contiguous runs (a metadata-preallocated
 *   1 TiB image is ~2000 runs), so most chunks never need more than this.
 * - When runs overlap or get too many, the chunk becomes a dense array of 2-bit
 *   counters (16 KiB per chunk), widened to 8, 16, 32 bits or doubles only when
 *   a counter in that chunk outgrows its width. Counts stay exact.
 * - In saturating mode (for "seen twice?" questions) counters stop at 3 and the
 *   chunk never widens.
 */

export const TALLY_CHUNK_BITS = 16;
export const TALLY_CHUNK_SIZE = 1 << TALLY_CHUNK_BITS;
/** Runs a chunk may hold before it becomes dense. */
const MAX_RUNS = 64;

type DenseArray = Uint8Array | Uint16Array | Uint32Array | Float64Array;

interface Chunk {
  /** Sorted, disjoint, non-adjacent [start, end) pairs (chunk-relative) of count 1; null when dense. */
  runs: number[] | null;
  /** 2-bit counters packed four to a byte when `width` is 2, else one element per cluster. */
  dense: DenseArray | null;
  width: 2 | 8 | 16 | 32 | 64;
}

/** Receives each cluster that already had a reference when `addRange` counted it again. */
export type CollisionSink = (cluster: number) => void;

/** A piece of a range with one count for every cluster, or DENSE_SEGMENT when they differ. */
export const DENSE_SEGMENT = -1;
export type SegmentVisitor = (start: number, length: number, value: number) => void;

export class RefcountTally {
  readonly saturating: boolean;
  readonly #chunks: Array<Chunk | undefined> = [];
  /** One past the highest cluster ever counted. */
  #end = 0;

  constructor(options: { saturating?: boolean } = {}) {
    this.saturating = options.saturating ?? false;
  }

  /** One past the highest cluster with a non-zero count (0 when empty). */
  get end(): number {
    return this.#end;
  }

  /**
   * Adds one reference to each of `count` clusters starting at `first`. Returns
   * how many of them were already referenced; `collisions`, when given, hears
   * each of those clusters.
   */
  addRange(first: number, count: number, collisions?: CollisionSink): number {
    if (count <= 0) return 0;
    if (first + count > this.#end) this.#end = first + count;
    let collided = 0;
    while (count > 0) {
      const index = Math.floor(first / TALLY_CHUNK_SIZE);
      const offset = first - index * TALLY_CHUNK_SIZE;
      const length = Math.min(count, TALLY_CHUNK_SIZE - offset);
      collided += this.#addInChunk(index, offset, length, collisions);
      first += length;
      count -= length;
    }
    return collided;
  }

  add(cluster: number, collisions?: CollisionSink): number {
    return this.addRange(cluster, 1, collisions);
  }

  get(cluster: number): number {
    const chunk = this.#chunks[Math.floor(cluster / TALLY_CHUNK_SIZE)];
    if (chunk === undefined) return 0;
    const offset = cluster % TALLY_CHUNK_SIZE;
    if (chunk.runs !== null) return inRuns(chunk.runs, offset) ? 1 : 0;
    return readDense(chunk, offset);
  }

  /** True when any cluster in [first, first + count) has a non-zero count. */
  anyInRange(first: number, count: number): boolean {
    let found = false;
    this.segments(first, count, (_start, _length, value) => {
      if (value !== 0) found = true;
    });
    if (!found) return false;
    // A dense segment may still be all zero.
    for (let cluster = first; cluster < first + count; cluster++) {
      if (this.get(cluster) !== 0) return true;
    }
    return false;
  }

  /**
   * Describes [first, first + count) as consecutive segments: a constant count
   * for run-mode and empty chunks, DENSE_SEGMENT (ask `get`) for dense chunks.
   */
  segments(first: number, count: number, visit: SegmentVisitor): void {
    while (count > 0) {
      const index = Math.floor(first / TALLY_CHUNK_SIZE);
      const base = index * TALLY_CHUNK_SIZE;
      const offset = first - base;
      const length = Math.min(count, TALLY_CHUNK_SIZE - offset);
      const chunk = this.#chunks[index];
      if (chunk === undefined) visit(first, length, 0);
      else if (chunk.runs === null) visit(first, length, DENSE_SEGMENT);
      else visitRuns(chunk.runs, base, offset, offset + length, visit);
      first += length;
      count -= length;
    }
  }

  /** Bytes of counter storage in use (for reports and the bench). */
  byteSize(): number {
    let bytes = 0;
    for (const chunk of this.#chunks) {
      if (chunk === undefined) continue;
      bytes += chunk.dense ? chunk.dense.byteLength : (chunk.runs?.length ?? 0) * 8;
    }
    return bytes;
  }

  #addInChunk(index: number, offset: number, length: number, collisions?: CollisionSink): number {
    let chunk = this.#chunks[index];
    if (chunk === undefined) {
      while (this.#chunks.length < index) this.#chunks.push(undefined);
      chunk = { runs: [offset, offset + length], dense: null, width: 2 };
      this.#chunks[index] = chunk;
      return 0;
    }
    const runs = chunk.runs;
    if (runs !== null) {
      if (tryAddRun(runs, offset, offset + length)) return 0;
      densify(chunk);
    }
    return this.#addDense(chunk, index * TALLY_CHUNK_SIZE, offset, length, collisions);
  }

  #addDense(
    chunk: Chunk,
    base: number,
    offset: number,
    length: number,
    collisions?: CollisionSink,
  ): number {
    let collided = 0;
    const end = offset + length;
    for (let at = offset; at < end; at++) {
      let value = readDense(chunk, at);
      if (value !== 0) {
        collided++;
        collisions?.(base + at);
      }
      value++;
      if (value > maxForWidth(chunk.width)) {
        if (this.saturating) continue;
        widen(chunk, value);
      }
      writeDense(chunk, at, value);
    }
    return collided;
  }
}

function maxForWidth(width: Chunk['width']): number {
  return width === 64 ? Number.MAX_SAFE_INTEGER : 2 ** width - 1;
}

function readDense(chunk: Chunk, at: number): number {
  const dense = chunk.dense as DenseArray;
  if (chunk.width === 2) return ((dense[at >>> 2] as number) >>> ((at & 3) * 2)) & 3;
  return dense[at] as number;
}

function writeDense(chunk: Chunk, at: number, value: number): void {
  const dense = chunk.dense as DenseArray;
  if (chunk.width === 2) {
    const shift = (at & 3) * 2;
    const byte = dense[at >>> 2] as number;
    dense[at >>> 2] = (byte & ~(3 << shift)) | (value << shift);
    return;
  }
  dense[at] = value;
}

/** Widens a dense chunk until `value` fits. */
function widen(chunk: Chunk, value: number): void {
  const values = new Float64Array(TALLY_CHUNK_SIZE);
  for (let at = 0; at < TALLY_CHUNK_SIZE; at++) values[at] = readDense(chunk, at);
  let width: Chunk['width'] = chunk.width;
  while (value > maxForWidth(width))
    width = width === 2 ? 8 : width === 8 ? 16 : width === 16 ? 32 : 64;
  chunk.width = width;
  chunk.dense =
    width === 8
      ? Uint8Array.from(values)
      : width === 16
        ? Uint16Array.from(values)
        : width === 32
          ? Uint32Array.from(values)
          : values;
}

function densify(chunk: Chunk): void {
  const dense = new Uint8Array(TALLY_CHUNK_SIZE / 4);
  chunk.dense = dense;
  chunk.width = 2;
  const runs = chunk.runs as number[];
  chunk.runs = null;
  for (let r = 0; r < runs.length; r += 2) {
    for (let at = runs[r] as number; at < (runs[r + 1] as number); at++) writeDense(chunk, at, 1);
  }
}

/** Index of the first run whose end is > `position` (runs.length / 2 when none). */
function firstRunEndingAfter(runs: number[], position: number): number {
  let low = 0;
  let high = runs.length / 2;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((runs[middle * 2 + 1] as number) > position) high = middle;
    else low = middle + 1;
  }
  return low;
}

function inRuns(runs: number[], position: number): boolean {
  const run = firstRunEndingAfter(runs, position);
  return run * 2 < runs.length && (runs[run * 2] as number) <= position;
}

/** Adds [start, end) as a count-1 run; false when it overlaps a run or there are too many runs. */
function tryAddRun(runs: number[], start: number, end: number): boolean {
  const last = runs.length - 1;
  const lastEnd = runs[last] as number;
  if (start >= lastEnd) {
    if (start === lastEnd) runs[last] = end;
    else if (runs.length < MAX_RUNS * 2) runs.push(start, end);
    else return false;
    return true;
  }
  const next = firstRunEndingAfter(runs, start);
  if ((runs[next * 2] as number) < end) return false; // overlaps run `next`: counts become 2
  const mergesPrevious = next > 0 && runs[next * 2 - 1] === start;
  const mergesNext = runs[next * 2] === end;
  if (mergesPrevious && mergesNext) {
    runs[next * 2 - 1] = runs[next * 2 + 1] as number;
    runs.splice(next * 2, 2);
  } else if (mergesPrevious) runs[next * 2 - 1] = end;
  else if (mergesNext) runs[next * 2] = start;
  else if (runs.length < MAX_RUNS * 2) runs.splice(next * 2, 0, start, end);
  else return false;
  return true;
}

function visitRuns(
  runs: number[],
  base: number,
  from: number,
  to: number,
  visit: SegmentVisitor,
): void {
  let position = from;
  for (let run = firstRunEndingAfter(runs, from); run * 2 < runs.length; run++) {
    const start = Math.max(runs[run * 2] as number, from);
    if (start >= to) break;
    const end = Math.min(runs[run * 2 + 1] as number, to);
    if (start > position) visit(base + position, start - position, 0);
    visit(base + start, end - start, 1);
    position = end;
  }
  if (position < to) visit(base + position, to - position, 0);
}
