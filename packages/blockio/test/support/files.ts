import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededBytes } from '@x/test-utils';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Where the built package lives; child processes import it (they cannot load TypeScript). */
export const distDirectory = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');

export function distEntry(entry = 'index.js'): string {
  const path = join(distDirectory, entry);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`pnpm build\` (pnpm test builds first)`);
  }
  return path;
}

/** A plain-JavaScript child process script under test/children/. */
export function childScript(name: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'children', name);
}

export interface DataRun {
  offset: number;
  length: number;
  seed: number;
}

/** Creates a sparse file of `size` bytes holding seeded data at the given runs. */
export async function writeSparseFile(path: string, size: number, runs: DataRun[]): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    for (const run of runs) {
      await handle.write(seededBytes(run.length, run.seed), 0, run.length, run.offset);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}
