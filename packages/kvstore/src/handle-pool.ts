import type { FileHandle } from 'node:fs/promises';
import { openReadOnly } from './file-open.js';

interface PooledHandle {
  readonly handle: FileHandle;
  users: number;
}

/**
 * Read-only file handles kept open between reads, so that many point lookups do not
 * open and close a table file each time. Handles in use are never closed under their
 * users; at most `maxIdle` unused ones stay open (least recently used closed first).
 */
export class HandlePool {
  private readonly open = new Map<string, PooledHandle>();
  private closed = false;

  constructor(private readonly maxIdle = 64) {}

  async acquire(
    path: string,
    structure: string,
  ): Promise<{ handle: FileHandle; release: () => Promise<void> }> {
    let entry = this.open.get(path);
    if (entry === undefined) {
      const handle = await openReadOnly(path, structure);
      // Another acquire may have opened it meanwhile: keep one.
      const raced = this.open.get(path);
      if (raced !== undefined) {
        await handle.close();
        entry = raced;
      } else {
        entry = { handle, users: 0 };
      }
    }
    // Re-inserting keeps the Map in least-recently-used order.
    this.open.delete(path);
    this.open.set(path, entry);
    entry.users++;
    const used = entry;
    let released = false;
    return {
      handle: used.handle,
      release: async () => {
        if (released) return;
        released = true;
        used.users--;
        await this.trim();
      },
    };
  }

  private async trim(): Promise<void> {
    const idle = [...this.open].filter(([, entry]) => entry.users === 0);
    const excess = this.closed ? idle.length : idle.length - this.maxIdle;
    for (const [path, entry] of idle.slice(0, Math.max(0, excess))) {
      this.open.delete(path);
      await entry.handle.close();
    }
  }

  /** Closes every idle handle now and every busy one when its user releases it. */
  async close(): Promise<void> {
    this.closed = true;
    await this.trim();
  }
}
