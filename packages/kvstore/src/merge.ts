import { compareInternal, type InternalEntry } from './internal-key.js';

/**
 * Merges sources that are each in internal-key order into one stream in internal-key
 * order (LevelDB's MergingIterator): a binary heap of the sources' current entries.
 */
export async function* mergeSources(
  sources: Array<AsyncIterator<InternalEntry>>,
): AsyncGenerator<InternalEntry> {
  const heap: Array<{ entry: InternalEntry; source: AsyncIterator<InternalEntry> }> = [];
  try {
    for (const source of sources) {
      const first = await source.next();
      if (!first.done) push(heap, { entry: first.value, source });
    }
    while (heap.length > 0) {
      const top = heap[0] as (typeof heap)[number];
      yield top.entry;
      const next = await top.source.next();
      if (next.done) {
        const last = heap.pop() as (typeof heap)[number];
        if (heap.length > 0) {
          heap[0] = last;
          siftDown(heap, 0);
        }
      } else {
        top.entry = next.value;
        siftDown(heap, 0);
      }
    }
  } finally {
    // Sources still open (an abandoned iteration) close their files.
    await Promise.all(sources.map((source) => source.return?.()));
  }
}

type Item = { entry: InternalEntry };

function push<T extends Item>(heap: T[], item: T): void {
  heap.push(item);
  let index = heap.length - 1;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (compareInternal((heap[parent] as T).entry, item.entry) <= 0) break;
    heap[index] = heap[parent] as T;
    index = parent;
  }
  heap[index] = item;
}

function siftDown<T extends Item>(heap: T[], start: number): void {
  const item = heap[start] as T;
  let index = start;
  for (;;) {
    const left = index * 2 + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child =
      right < heap.length && compareInternal((heap[right] as T).entry, (heap[left] as T).entry) < 0
        ? right
        : left;
    if (compareInternal((heap[child] as T).entry, item.entry) >= 0) break;
    heap[index] = heap[child] as T;
    index = child;
  }
  heap[index] = item;
}
