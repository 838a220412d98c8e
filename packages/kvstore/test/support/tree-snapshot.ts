import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Every entry of a directory with its size, mode, mtime and content hash: to prove nothing changed. */
export async function snapshotTree(directory: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const directoryInfo = await stat(directory);
  result['.'] = `dir ${directoryInfo.mode.toString(8)} ${directoryInfo.mtimeMs}`;
  for (const name of (await readdir(directory)).sort()) {
    const path = join(directory, name);
    const info = await stat(path);
    const hash = info.isFile()
      ? createHash('sha256')
          .update(await readFile(path))
          .digest('hex')
      : 'dir';
    result[name] = `${info.size} ${info.mode.toString(8)} ${info.mtimeMs} ${hash}`;
  }
  return result;
}
