import type { ProgressEvent, ProgressListener } from './progress-event.js';

/**
 * Counts work done in one phase and reports it to a listener at most every
 * `intervalMs` (and always at the end), so hot loops can call `advance` freely.
 */
export class ProgressTracker {
  readonly phase: string;
  readonly total: number;
  #done = 0;
  readonly #listener: ProgressListener | undefined;
  readonly #intervalMs: number;
  readonly #startedAt = performance.now();
  #lastReportAt = Number.NEGATIVE_INFINITY;

  constructor(
    phase: string,
    total: number,
    listener: ProgressListener | undefined,
    intervalMs = 100,
  ) {
    this.phase = phase;
    this.total = total;
    this.#listener = listener;
    this.#intervalMs = intervalMs;
  }

  get done(): number {
    return this.#done;
  }

  advance(amount: number): void {
    this.#done += amount;
    this.maybeReport();
  }

  set(done: number): void {
    this.#done = done;
    this.maybeReport();
  }

  /** Reports the final state unconditionally. */
  finish(): void {
    if (this.#listener) this.#listener(this.snapshot());
  }

  snapshot(): ProgressEvent {
    const elapsedMs = performance.now() - this.#startedAt;
    return {
      phase: this.phase,
      done: this.#done,
      total: this.total,
      bytesPerSecond: elapsedMs > 0 ? Math.round((this.#done * 1000) / elapsedMs) : 0,
      elapsedMs: Math.round(elapsedMs),
    };
  }

  private maybeReport(): void {
    if (!this.#listener) return;
    const now = performance.now();
    if (now - this.#lastReportAt < this.#intervalMs) return;
    this.#lastReportAt = now;
    this.#listener(this.snapshot());
  }
}
