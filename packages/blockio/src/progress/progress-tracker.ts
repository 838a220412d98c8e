import type { ProgressEvent, ProgressListener, ProgressUnit } from './progress-event.js';

export interface ProgressTrackerOptions {
  /** Least time between two reports (the final one aside); default 100 ms. */
  intervalMs?: number | undefined;
  /**
   * What the phase counts. Given, every event carries it and renderers follow it;
   * left out, events carry no unit (as before there was one) and count bytes
   * unless the renderer was created for items.
   */
  unit?: ProgressUnit | undefined;
}

/**
 * Counts work done in one phase and reports it to a listener at most every
 * `intervalMs` (and always at the end), so hot loops can call `advance` freely.
 */
export class ProgressTracker {
  readonly phase: string;
  readonly total: number;
  /** What `done` and `total` count: the `unit` option, bytes by default. */
  readonly unit: ProgressUnit;
  #done = 0;
  readonly #listener: ProgressListener | undefined;
  readonly #intervalMs: number;
  readonly #reportsUnit: boolean;
  readonly #startedAt = performance.now();
  #lastReportAt = Number.NEGATIVE_INFINITY;

  /** `options` may be the interval in milliseconds alone, as it used to be. */
  constructor(
    phase: string,
    total: number,
    listener: ProgressListener | undefined,
    options: ProgressTrackerOptions | number = {},
  ) {
    const { intervalMs = 100, unit } =
      typeof options === 'number' ? { intervalMs: options, unit: undefined } : options;
    this.phase = phase;
    this.total = total;
    this.unit = unit ?? 'bytes';
    this.#listener = listener;
    this.#intervalMs = intervalMs;
    this.#reportsUnit = unit !== undefined;
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
      ...(this.#reportsUnit ? { unit: this.unit } : {}),
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
