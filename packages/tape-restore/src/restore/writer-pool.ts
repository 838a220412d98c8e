/**
 * A bounded pool of chunk writers (PBS uses 4 writer threads, §9 phase 2): `submit`
 * waits while the pool is full, so the tape reader never runs ahead by more than
 * `size` chunks, and memory stays bounded. The first failure is kept and rethrown by
 * `submit` and `drain`; later tasks are not started.
 */
export class WriterPool {
  readonly #size: number;
  readonly #running = new Set<Promise<void>>();
  #failure: { error: unknown } | undefined;

  constructor(size: number) {
    this.#size = Math.max(1, Math.floor(size));
  }

  async submit(task: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.#size) await Promise.race(this.#running);
    if (this.#failure) throw this.#failure.error;
    const run: Promise<void> = task()
      .catch((error) => {
        this.#failure ??= { error };
      })
      .finally(() => this.#running.delete(run));
    this.#running.add(run);
  }

  /** Waits for every task; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    if (this.#failure) throw this.#failure.error;
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }
}
