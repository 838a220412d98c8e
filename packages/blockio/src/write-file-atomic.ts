import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BlockIoError, fromSystemError } from './errors.js';
import { exists, renameNoReplace, syncDirectory } from './output-file.js';
import { trackPartialOutput } from './partial-outputs.js';

export interface WriteFileAtomicOptions {
  /**
   * What to do when `path` exists: `fail` (EEXIST), `replace` it, or `keep` it
   * untouched and resolve to `kept` (for content-addressed stores, where a file of
   * that name already holds the same bytes). The check and the rename are one step:
   * a file that appears meanwhile is never replaced unless `replace`.
   */
  ifExists: 'fail' | 'replace' | 'keep';
  /** fsync the file before the rename and the directory after. Default true. */
  sync?: boolean | undefined;
}

/**
 * Writes a small file whole or not at all: into a temporary file with a unique name
 * beside `path` (so concurrent writers of one path never share it), then renamed
 * into place. Resolves to `written`, or `kept` when `ifExists: 'keep'` found a file.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteFileAtomicOptions,
): Promise<'written' | 'kept'> {
  const { ifExists } = options;
  const sync = options.sync ?? true;
  if (ifExists !== 'replace' && (await exists(path))) {
    if (ifExists === 'keep') return 'kept';
    throw existsError(path);
  }
  const temporary = temporaryPath(path);
  const untrack = trackPartialOutput(temporary);
  try {
    await writeTemporary(temporary, data, sync);
    if (ifExists === 'replace') {
      await rename(temporary, path);
    } else {
      try {
        await renameNoReplace(temporary, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        // Another writer got there between our check and our rename.
        await unlink(temporary).catch(() => {});
        if (ifExists === 'keep') return 'kept';
        throw existsError(path);
      }
    }
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw fromSystemError(error, 'write the file', { path });
  } finally {
    untrack();
  }
  if (sync) await syncDirectory(dirname(path));
  return 'written';
}

/**
 * `.<name>.<random>.partial` in the same directory: rename needs the same filesystem,
 * and the leading dot keeps it out of listings of a store's files. node:crypto is loaded
 * on first use, not imported: importing it costs every CLI some 20 built-in modules at
 * start-up.
 */
function temporaryPath(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.${process.getBuiltinModule('node:crypto').randomBytes(6).toString('hex')}.partial`,
  );
}

async function writeTemporary(
  temporary: string,
  data: Uint8Array | string,
  sync: boolean,
): Promise<void> {
  // 'wx': a name collision fails instead of writing into another writer's file.
  // 0o600: what is stored may be another user's data (a chunk of their disk).
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

function existsError(path: string): BlockIoError {
  return new BlockIoError(
    'EEXIST',
    "file already exists (pass ifExists: 'replace' to replace it, or 'keep' to keep it)",
    { path },
  );
}
