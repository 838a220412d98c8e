import { throwIfAborted } from './errors.js';

export interface ForEachConcurrentOptions {
  signal?: AbortSignal | undefined;
  /** The file or device the work is on, named by the ABORTED error. */
  path?: string | undefined;
}

/**
 * Runs `worker` over `items` with at most `concurrency` calls in flight. Stops
 * taking new items after the first failure or abort and rethrows it once the
 * calls in flight have settled, so no I/O is left running behind the caller.
 */
export async function forEachConcurrent<T>(
  items: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  worker: (item: T, slot: number) => Promise<void>,
  options: ForEachConcurrentOptions = {},
): Promise<void> {
  const { signal, path } = options;
  const iterator =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  let pulling: Promise<IteratorResult<T>> | undefined;

  // Pulls are serialised: async generators must not be advanced concurrently.
  const next = async (): Promise<IteratorResult<T>> => {
    while (pulling) await pulling.catch(() => {});
    pulling = Promise.resolve(iterator.next());
    try {
      return await pulling;
    } finally {
      pulling = undefined;
    }
  };

  const lane = async (slot: number) => {
    while (failure === undefined) {
      try {
        throwIfAborted(signal, path);
        const step = await next();
        if (step.done || failure !== undefined) return;
        await worker(step.value, slot);
      } catch (error) {
        failure ??= { error };
        return;
      }
    }
  };

  const lanes = Math.max(1, Math.floor(concurrency));
  await Promise.all(Array.from({ length: lanes }, (_, slot) => lane(slot)));
  if (failure !== undefined) {
    await (iterator as { return?: () => unknown }).return?.();
    throw failure.error;
  }
}

/** A counting semaphore for bounding concurrent requests to one device or host. */
export class Semaphore {
  #available: number;
  readonly #waiters: Array<() => void> = [];

  constructor(permits: number) {
    this.#available = permits;
  }

  async acquire(): Promise<void> {
    if (this.#available > 0) {
      this.#available--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter();
    else this.#available++;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
