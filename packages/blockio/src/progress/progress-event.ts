/** The one progress shape every long operation reports. Sizes are integer bytes (or items). */
export interface ProgressEvent {
  /** What is being done: "copy", "scan", "check refcounts", … */
  readonly phase: string;
  readonly done: number;
  readonly total: number;
  /**
   * Average rate since the phase started, in units of `done` per second: bytes per
   * second where the phase counts bytes, items per second where it counts items
   * (despite the name).
   */
  readonly bytesPerSecond: number;
  readonly elapsedMs: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Options every long-running library call accepts. */
export interface LongRunningOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ProgressListener | undefined;
}
