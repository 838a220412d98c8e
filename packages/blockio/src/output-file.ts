import { constants } from 'node:fs';
import { link, lstat, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BlockIoError, fromSystemError, OVERWRITE_REMEDY } from './errors.js';
import { FileDevice } from './file-device.js';
import { trackPartialOutput } from './partial-outputs.js';
import { refuseSameFile } from './same-file.js';

export interface OutputFileOptions {
  /** Initial size; the file is created sparse at this size. Default 0. */
  size?: number;
  /** Replace an existing file at `path` on commit. Default false: refuse. */
  overwrite?: boolean;
  /**
   * fsync the data before the rename, so that after a crash the name holds either
   * the old file or the whole new one. Default true; turn off only for scratch output.
   */
  sync?: boolean;
  /**
   * How writes reach the kernel (FileDevice `io`). Default `sync`. `async` puts
   * them on libuv's thread pool, so a caller that reads on its own thread keeps
   * writing while it reads (see qcow2's copyToRawFile).
   */
  io?: 'sync' | 'async';
  /**
   * Permission bits of the new file (before the umask). Default 0o600: an output
   * made from a disk or filesystem can hold other users' data (e2image and qemu-img's
   * raw outputs of a device are private too). Pass 0o644 for outputs that cannot.
   */
  mode?: number;
  /**
   * The files this output is made from: refused (`SAME_FILE`) when the output is one
   * of them through any path or link, since replacing it would destroy the input.
   */
  inputs?: readonly string[];
}

/**
 * An output written under `<path>.partial` and moved into place only when complete,
 * so a crash, Ctrl-C or error never leaves a half-written file under the real name
 * and never touches an existing file until the new one is whole.
 */
export interface OutputFile {
  readonly path: string;
  readonly partialPath: string;
  /** Writable, zero-extending: bytes not written read as zeros, writes past the end grow it. */
  readonly device: FileDevice;
  /**
   * Runs the `beforeCommit` hooks, fsyncs the data, renames the partial file to
   * `path` and fsyncs the directory. A hook that fails leaves the output open (abort it).
   */
  commit(): Promise<void>;
  /**
   * Registers work that must finish before the file may appear under its name, such
   * as a format library flushing and closing what it wrote into `device` — so a
   * caller that commits without closing first still gets a complete file.
   */
  beforeCommit(hook: () => Promise<void>): void;
  /** Closes and removes the partial file. Safe to call more than once or after commit. */
  abort(): Promise<void>;
}

export async function createOutputFile(
  path: string,
  options: OutputFileOptions = {},
): Promise<OutputFile> {
  const overwrite = options.overwrite ?? false;
  const sync = options.sync ?? true;
  if (!overwrite && (await exists(path))) {
    throw new BlockIoError(
      'EEXIST',
      `output file already exists (${OVERWRITE_REMEDY} to replace it)`,
      {
        path,
      },
    );
  }
  if (options.inputs !== undefined) await refuseSameFile(path, options.inputs);
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile()) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `the output exists and is ${existing.isDirectory() ? 'a directory' : existing.isBlockDevice() ? 'a block device' : 'not a regular file'}, not a file this can replace`,
      { path },
    );
  }
  const partialPath = `${path}.partial`;
  if (await exists(partialPath)) {
    if (!overwrite) {
      throw new BlockIoError(
        'EEXIST',
        `a partial output from an earlier run exists at ${partialPath}; remove it or ${OVERWRITE_REMEDY}`,
        { path },
      );
    }
    await unlink(partialPath).catch(() => {});
  }
  // Listed before it exists, so a second Ctrl-C can remove it at any moment.
  const untrack = trackPartialOutput(partialPath);
  let device: FileDevice;
  try {
    device = await FileDevice.open(partialPath, {
      create: true,
      zeroExtends: true,
      io: options.io,
      mode: options.mode ?? 0o600,
      // Errors name the output the user asked for, not our temporary name.
      name: path,
    });
  } catch (error) {
    untrack();
    throw error;
  }
  device.markZeroed();
  let state: 'open' | 'committed' | 'aborted' = 'open';
  const hooks: Array<() => Promise<void>> = [];
  try {
    if (options.size !== undefined && options.size > 0) await device.truncate(options.size);
  } catch (error) {
    await device.close().catch(() => {});
    await unlink(partialPath).catch(() => {});
    untrack();
    throw error;
  }

  return {
    path,
    partialPath,
    device,
    async commit() {
      if (state !== 'open') {
        throw new BlockIoError('INVALID_ARGUMENT', `output was already ${state}`, { path });
      }
      for (const hook of hooks) await hook();
      try {
        if (sync) await device.flush();
        await device.close();
        if (overwrite) await rename(partialPath, path);
        else await renameNoReplace(partialPath, path);
        untrack();
        if (sync) await syncDirectory(dirname(path));
        state = 'committed';
      } catch (error) {
        throw fromSystemError(error, 'move the finished output into place', { path });
      }
    },
    beforeCommit(hook) {
      hooks.push(hook);
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await device.close().catch(() => {});
      await unlink(partialPath).catch(() => {});
      untrack();
    },
  };
}

/**
 * Creates the file with write, commits it on success and removes the partial file
 * on any failure (including an abort), then rethrows.
 */
export async function withOutputFile<T>(
  path: string,
  write: (output: OutputFile) => Promise<T>,
): Promise<T>;
export async function withOutputFile<T>(
  path: string,
  options: OutputFileOptions | undefined,
  write: (output: OutputFile) => Promise<T>,
): Promise<T>;
export async function withOutputFile<T>(
  path: string,
  optionsOrWrite: OutputFileOptions | undefined | ((output: OutputFile) => Promise<T>),
  maybeWrite?: (output: OutputFile) => Promise<T>,
): Promise<T> {
  const [options, write] =
    typeof optionsOrWrite === 'function'
      ? [{}, optionsOrWrite]
      : [optionsOrWrite, maybeWrite as (output: OutputFile) => Promise<T>];
  const output = await createOutputFile(path, options);
  try {
    const result = await write(output);
    await output.commit();
    return result;
  } catch (error) {
    await output.abort();
    throw error;
  }
}

/** rename() that never replaces `to`, so a file that appeared meanwhile survives. */
export async function renameNoReplace(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Filesystems without hard links (FAT, some FUSE): check, then rename.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') {
      throw error;
    }
    if (await exists(to)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
    await rename(from, to);
    return;
  }
  await unlink(from);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY).catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is atomic.
  } finally {
    await handle.close();
  }
}
