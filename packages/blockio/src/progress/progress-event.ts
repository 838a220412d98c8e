/** What `done` and `total` count. */
export type ProgressUnit = 'bytes' | 'items';

/** The one progress shape every long operation reports. Sizes are integer bytes (or items). */
export interface ProgressEvent {
  /** What is being done: "copy", "scan", "check refcounts", … */
  readonly phase: string;
  readonly done: number;
  readonly total: number;
  /**
   * What `done` and `total` count, when the phase says: a tool can count one phase
   * in items (inodes, tables) and the next in bytes, and renderers follow this.
   * Absent: the renderer's own unit (bytes unless it was created for items).
   */
  readonly unit?: ProgressUnit;
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
