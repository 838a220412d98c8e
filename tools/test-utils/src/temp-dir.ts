import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  /** A path inside the directory. */
  file(name: string): string;
  remove(): Promise<void>;
}

/**
 * A fresh directory under `base`, else `BLOCKKIT_TMPDIR`, else the system temp dir.
 * Tests that need a disk filesystem (FIEMAP, fallocate) pass a base inside the
 * repository, since /tmp is often tmpfs.
 */
export async function makeTempDir(prefix = 'blockkit-', base?: string): Promise<TempDir> {
  const parent = base ?? process.env.BLOCKKIT_TMPDIR ?? tmpdir();
  await mkdir(parent, { recursive: true });
  const path = await mkdtemp(join(parent, prefix));
  return {
    path,
    file: (name) => join(path, name),
    remove: () => rm(path, { recursive: true, force: true }),
  };
}
