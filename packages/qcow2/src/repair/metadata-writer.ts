import type { BlockDevice } from '@x/blockio';
import type { UndoLogWriter } from '../undo/undo-log.js';

/** A write repair makes (or, in a dry run, would make). */
export interface PlannedWrite {
  offset: number;
  length: number;
  /** What it fixes: "refcount block 3", "L2 table of L1 entry 0: COPIED", … */
  reason: string;
}

const BATCH_BYTES = 4 << 20;
/** Writes listed in a repair result (counts are always complete). */
const MAX_LISTED = 1000;

/**
 * Every metadata write of a repair goes through here: queued writes are saved
 * to the undo log (old bytes, flushed) before any of them touches the image.
 * In a dry run nothing is saved or written; the plan is only recorded.
 */
export class MetadataWriter {
  readonly image: BlockDevice;
  readonly dryRun: boolean;
  readonly #openLog: (() => Promise<UndoLogWriter>) | undefined;
  #log: UndoLogWriter | undefined;
  #pending: Array<{ offset: number; data: Uint8Array }> = [];
  #pendingBytes = 0;
  writes = 0;
  bytes = 0;
  readonly planned: PlannedWrite[] = [];

  /** `openLog` starts the undo log session when the first write is committed (none: no undo log). */
  constructor(
    image: BlockDevice,
    openLog: (() => Promise<UndoLogWriter>) | undefined,
    dryRun: boolean,
  ) {
    this.image = image;
    this.#openLog = openLog;
    this.dryRun = dryRun;
  }

  /** The undo log session, once a write has been committed. */
  get log(): UndoLogWriter | undefined {
    return this.#log;
  }

  /** Queues a write (the data is copied). Commits automatically once a few MiB are pending. */
  async queue(offset: number, data: Uint8Array, reason: string): Promise<void> {
    this.writes++;
    this.bytes += data.byteLength;
    if (this.planned.length < MAX_LISTED)
      this.planned.push({ offset, length: data.byteLength, reason });
    if (this.dryRun) return;
    this.#pending.push({ offset, data: Uint8Array.from(data) });
    this.#pendingBytes += data.byteLength;
    if (this.#pendingBytes >= BATCH_BYTES) await this.commit();
  }

  /** Saves the pending writes' old bytes to the undo log, then writes them. */
  async commit(): Promise<void> {
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#log === undefined && this.#openLog !== undefined) this.#log = await this.#openLog();
    await this.#log?.save(this.image, pending);
    for (const write of pending) await this.image.write(write.offset, write.data);
  }

  /** Commits and flushes the image to stable storage. */
  async sync(): Promise<void> {
    await this.commit();
    if (!this.dryRun) await this.image.flush();
  }
}
