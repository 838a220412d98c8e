import { mkdir, open, readFile, stat, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { forEachConcurrent, fromSystemError, writeFileAtomic } from '@x/blockio';
import { TapeRestoreError } from '../errors.js';
import { formatGroupPath, type SnapshotName, snapshotRelativeDir } from '../snapshot-name.js';
import { acquireLockFile } from './lock-file.js';

export type InsertResult = 'inserted' | 'touched';

/**
 * A PBS datastore directory as the restore writes into it (pbs-tape.md §6): chunks
 * under `.chunks/XXXX/<digest>`, snapshots under `[ns/…/]type/id/time`, the group's
 * `owner` file. Locks are lock files under `.tmp/locks/` (see acquireLockFile).
 */
export class Datastore {
  readonly name: string;
  readonly path: string;
  /** Chunks written but not yet fsynced (see syncChunks). */
  readonly #unsynced = new Set<string>();

  private constructor(name: string, path: string) {
    this.name = name;
    this.path = path;
  }

  /** Opens a datastore: its directory must hold `.chunks`. */
  static async open(name: string, path: string): Promise<Datastore> {
    try {
      const chunks = await stat(join(path, '.chunks'));
      if (!chunks.isDirectory())
        throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (error) {
      throw new TapeRestoreError(
        'BAD_DATASTORE',
        `datastore '${name}' at ${path} is not a datastore (no .chunks directory)`,
        { path, cause: error },
      );
    }
    return new Datastore(name, path);
  }

  chunkPath(digest: string): string {
    return join(this.path, '.chunks', digest.slice(0, 4), digest);
  }

  /**
   * PBS's cond_touch_chunk: sets the chunk's atime to now (mtime untouched) and says
   * whether it exists. This is how "the target already has it" is decided.
   */
  async touchChunk(digest: string): Promise<boolean> {
    const path = this.chunkPath(digest);
    try {
      const info = await stat(path);
      await utimes(path, new Date(), info.mtime);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fromSystemError(error, 'touch the chunk', { path });
    }
  }

  /** Whether a chunk file exists, without touching it (plans change nothing). */
  async hasChunk(digest: string): Promise<boolean> {
    try {
      await stat(this.chunkPath(digest));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fromSystemError(error, 'look up the chunk', { path: this.chunkPath(digest) });
    }
  }

  /**
   * Inserts a verified chunk (§6 Chunk insert): an existing file of the same size is
   * only touched; otherwise the blob goes to a temporary name and is renamed into
   * place, never over a file that appeared meanwhile. A missing prefix directory is
   * created (§11.10).
   */
  async insertChunk(digest: string, blob: Uint8Array): Promise<InsertResult> {
    const path = this.chunkPath(digest);
    try {
      const info = await stat(path);
      if (info.size === blob.byteLength) {
        await utimes(path, new Date(), info.mtime);
        return 'touched';
      }
      // A file of another size is a damaged chunk: PBS replaces it.
      await writeFileAtomic(path, blob, { ifExists: 'replace', sync: false });
      this.#unsynced.add(path);
      return 'inserted';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw fromSystemError(error, 'insert the chunk', { path });
      }
    }
    await mkdir(join(this.path, '.chunks', digest.slice(0, 4)), { recursive: true });
    // Not fsynced one by one (PBS does not either): syncChunks flushes them together,
    // which lets the filesystem commit many in one journal transaction.
    const result = await writeFileAtomic(path, blob, { ifExists: 'keep', sync: false });
    if (result === 'kept') return 'touched';
    this.#unsynced.add(path);
    return 'inserted';
  }

  /**
   * Makes the chunks inserted so far durable (file data, then their directories)
   * before a snapshot that needs them is published.
   */
  async syncChunks(concurrency = 16): Promise<void> {
    const files = [...this.#unsynced];
    this.#unsynced.clear();
    const syncOne = async (path: string) => {
      const handle = await open(path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    };
    try {
      await forEachConcurrent(files, concurrency, syncOne);
      await forEachConcurrent(new Set(files.map((file) => dirname(file))), concurrency, syncOne);
    } catch (error) {
      throw fromSystemError(error, 'sync the restored chunks', { path: this.path });
    }
  }

  snapshotDir(snapshot: SnapshotName): string {
    return join(this.path, snapshotRelativeDir(snapshot));
  }

  groupDir(snapshot: SnapshotName): string {
    return join(this.path, formatGroupPath(snapshot));
  }

  async snapshotExists(snapshot: SnapshotName): Promise<boolean> {
    try {
      await stat(this.snapshotDir(snapshot));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fromSystemError(error, 'look up the snapshot', { path: this.snapshotDir(snapshot) });
    }
  }

  /** The group's owner, or undefined when the group does not exist. */
  async groupOwner(snapshot: SnapshotName): Promise<string | undefined> {
    const path = join(this.groupDir(snapshot), 'owner');
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(error, 'read the group owner', { path });
    }
  }

  /**
   * Creates the namespace and group directories when needed and the owner file with
   * create-new semantics (§6); returns the group's owner (ours or the existing one).
   */
  async createGroup(snapshot: SnapshotName, owner: string): Promise<string> {
    const group = this.groupDir(snapshot);
    await mkdir(group, { recursive: true });
    await writeFileAtomic(join(group, 'owner'), `${owner}\n`, { ifExists: 'keep' });
    return (await this.groupOwner(snapshot)) ?? owner;
  }

  /** Exclusive lock of one group (serialises phase 3 of concurrent restores). */
  lockGroup(snapshot: SnapshotName): Promise<() => Promise<void>> {
    const key = formatGroupPath(snapshot).replaceAll('/', '_');
    return acquireLockFile(join(this.path, '.tmp', 'locks', `group-${key}.lck`), {
      what: `group ${formatGroupPath(snapshot)} of datastore '${this.name}'`,
    });
  }

  /** Exclusive lock of `.tmp/<media-set>` (two restores of one media set into one store). */
  lockMediaSetTemp(mediaSetUuid: string): Promise<() => Promise<void>> {
    return acquireLockFile(join(this.path, '.tmp', 'locks', `media-set-${mediaSetUuid}.lck`), {
      what: `the temporary directory of media set ${mediaSetUuid} in datastore '${this.name}'`,
    });
  }

  /** PBS's phase 1 directory: `<base>/.tmp/<media-set-uuid>`. */
  tempDir(mediaSetUuid: string): string {
    return join(this.path, '.tmp', mediaSetUuid);
  }
}
