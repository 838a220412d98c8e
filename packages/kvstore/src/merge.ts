import { compareInternal, type InternalEntry } from './internal-key.js';

/** A source's current batch and the position in it. */
interface Cursor {
  batch: InternalEntry[];
  index: number;
  readonly source: AsyncIterator<InternalEntry[]>;
}

/** Entries per batch handed on: a few hundred keep the await count low and memory small. */
const OUTPUT_BATCH = 256;

/**
 * Merges sources that are each in internal-key order into batches in internal-key
 * order (LevelDB's MergingIterator over a binary heap). Sources give arrays (a table's
 * data block, a slice of the memtable), so the merge awaits only when one of them runs
 * dry, not once per entry.
 */
export async function* mergeBatches(
  sources: Array<AsyncIterator<InternalEntry[]>>,
  /** Stop before the first user key ≥ this (sources need not know the bound). */
  high?: Buffer,
): AsyncGenerator<InternalEntry[]> {
  const heap: Cursor[] = [];
  try {
    for (const source of sources) {
      const cursor = await refill({ batch: [], index: 0, source });
      if (cursor !== undefined) push(heap, cursor);
    }
    let output: InternalEntry[] = [];
    while (heap.length > 0) {
      const top = heap[0] as Cursor;
      const entry = top.batch[top.index] as InternalEntry;
      if (high !== undefined && Buffer.compare(entry.userKey, high) >= 0) break;
      output.push(entry);
      top.index++;
      if (top.index < top.batch.length) {
        siftDown(heap, 0);
      } else if ((await refill(top)) !== undefined) {
        siftDown(heap, 0);
      } else {
        const last = heap.pop() as Cursor;
        if (heap.length > 0) {
          heap[0] = last;
          siftDown(heap, 0);
        }
      }
      if (output.length >= OUTPUT_BATCH) {
        yield output;
        output = [];
      }
    }
    if (output.length > 0) yield output;
  } finally {
    // Sources still open (an abandoned iteration) release their files.
    await Promise.all(sources.map((source) => source.return?.()));
  }
}

/** Loads the cursor's next non-empty batch; undefined when its source is done. */
async function refill(cursor: Cursor): Promise<Cursor | undefined> {
  for (;;) {
    const next = await cursor.source.next();
    if (next.done) return undefined;
    if (next.value.length > 0) {
      cursor.batch = next.value;
      cursor.index = 0;
      return cursor;
    }
  }
}

const current = (cursor: Cursor): InternalEntry => cursor.batch[cursor.index] as InternalEntry;

function push(heap: Cursor[], item: Cursor): void {
  heap.push(item);
  let index = heap.length - 1;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (compareInternal(current(heap[parent] as Cursor), current(item)) <= 0) break;
    heap[index] = heap[parent] as Cursor;
    index = parent;
  }
  heap[index] = item;
}

function siftDown(heap: Cursor[], start: number): void {
  const item = heap[start] as Cursor;
  let index = start;
  for (;;) {
    const left = index * 2 + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child =
      right < heap.length &&
      compareInternal(current(heap[right] as Cursor), current(heap[left] as Cursor)) < 0
        ? right
        : left;
    if (compareInternal(current(heap[child] as Cursor), current(item)) >= 0) break;
    heap[index] = heap[child] as Cursor;
    index = child;
  }
  heap[index] = item;
}
