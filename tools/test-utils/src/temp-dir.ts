import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  /** A path inside the directory. */
  file(name: string): string;
  remove(): Promise<void>;
}

/** A fresh directory under the system temp dir (or `BLOCKKIT_TMPDIR`). */
export async function makeTempDir(prefix = 'blockkit-'): Promise<TempDir> {
  const base = process.env.BLOCKKIT_TMPDIR ?? tmpdir();
  const path = await mkdtemp(join(base, prefix));
  return {
    path,
    file: (name) => join(path, name),
    remove: () => rm(path, { recursive: true, force: true }),
  };
}
