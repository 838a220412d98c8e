import { type ForEachConcurrentOptions, forEachConcurrent } from './concurrency.js';

/** One item whose worker failed, and how. */
export interface SettledFailure<T> {
  readonly item: T;
  /** The item's position in `items`, from 0. */
  readonly index: number;
  readonly error: unknown;
}

/**
 * Like forEachConcurrent, but a failing item does not stop the others: every item
 * is run (unless the signal aborts, which throws ABORTED as forEachConcurrent does)
 * and the failures are returned in item order. For tools that must carry on and
 * report, such as a recovery reading from a half-broken cluster.
 */
export async function forEachSettled<T>(
  items: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  worker: (item: T, slot: number) => Promise<void>,
  options: ForEachConcurrentOptions = {},
): Promise<Array<SettledFailure<T>>> {
  const failures: Array<SettledFailure<T>> = [];
  await forEachConcurrent(
    numbered(items),
    concurrency,
    async ({ item, index }, slot) => {
      try {
        await worker(item, slot);
      } catch (error) {
        failures.push({ item, index, error });
      }
    },
    options,
  );
  // Workers finish out of order; a report reads best in the order it was asked for.
  return failures.sort((a, b) => a.index - b.index);
}

interface Numbered<T> {
  item: T;
  index: number;
}

/**
 * Numbers the items as they are pulled. A sync iterable stays sync: `for await`
 * would await items that are promises, which forEachConcurrent hands over as they are.
 */
function numbered<T>(
  items: Iterable<T> | AsyncIterable<T>,
): Iterable<Numbered<T>> | AsyncIterable<Numbered<T>> {
  if (Symbol.asyncIterator in items) return numberedAsync(items as AsyncIterable<T>);
  return numberedSync(items as Iterable<T>);
}

function* numberedSync<T>(items: Iterable<T>): Iterable<Numbered<T>> {
  let index = 0;
  for (const item of items) yield { item, index: index++ };
}

async function* numberedAsync<T>(items: AsyncIterable<T>): AsyncIterable<Numbered<T>> {
  let index = 0;
  for await (const item of items) yield { item, index: index++ };
}
