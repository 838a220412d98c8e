import { createHash } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Fixtures are made by the real tools at test time and cached under the package's
 * `.fixtures/` (git-ignored), keyed by a recipe string: change the recipe and the
 * fixture is rebuilt. Building happens in a scratch directory that is renamed into
 * place, so an interrupted build never leaves a half-made fixture behind.
 */
export async function cachedFixture(
  cacheRoot: string,
  name: string,
  recipe: string,
  build: (directory: string) => Promise<void>,
): Promise<string> {
  const key = createHash('sha256').update(recipe).digest('hex').slice(0, 12);
  const directory = join(cacheRoot, '.fixtures', `${name}-${key}`);
  if (await isComplete(directory)) return directory;
  const scratch = `${directory}.building-${process.pid}-${Date.now()}`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  try {
    await build(scratch);
    await writeFile(join(scratch, '.complete'), recipe);
    await rm(directory, { recursive: true, force: true });
    await rename(scratch, directory);
  } catch (error) {
    await rm(scratch, { recursive: true, force: true });
    // Another worker may have finished the same fixture first.
    if (await isComplete(directory)) return directory;
    throw error;
  }
  return directory;
}

async function isComplete(directory: string): Promise<boolean> {
  try {
    await stat(join(directory, '.complete'));
    return true;
  } catch {
    return false;
  }
}
