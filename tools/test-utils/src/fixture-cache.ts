import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Fixtures are made by the real tools at test time and cached under the package's
 * `.fixtures/` (git-ignored), keyed by a recipe string: change the recipe and the
 * fixture is rebuilt. Building happens in a scratch directory that is renamed into
 * place, so an interrupted build never leaves a half-made fixture behind.
 *
 * Test files run in parallel workers (and several projects share fixtures), so a
 * build takes a lock first: one process builds, the others wait for its result
 * instead of building the same thing at the same time on a machine with two cores,
 * and a finished fixture is never replaced while another worker reads it.
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
  await mkdir(join(cacheRoot, '.fixtures'), { recursive: true });
  const release = await acquireLock(`${directory}.lock`, () => isComplete(directory));
  try {
    if (await isComplete(directory)) return directory;
    const scratch = `${directory}.building-${process.pid}-${Date.now()}`;
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true });
    try {
      await build(scratch);
      await writeFile(join(scratch, '.complete'), recipe);
      // Only an incomplete leftover can be here: complete ones returned above.
      await rm(directory, { recursive: true, force: true });
      await rename(scratch, directory);
    } catch (error) {
      await rm(scratch, { recursive: true, force: true });
      throw error;
    }
    return directory;
  } finally {
    await release?.();
  }
}

/**
 * Takes `<lock>` (a directory holding the owner's pid). Returns undefined without the
 * lock when `done()` turns true while waiting (another process built it). A lock whose
 * owner has died is taken over.
 */
async function acquireLock(
  lock: string,
  done: () => Promise<boolean>,
): Promise<(() => Promise<void>) | undefined> {
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      return () => rm(lock, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await done()) return undefined;
    if (await ownerIsGone(lock)) {
      await rm(lock, { recursive: true, force: true });
      continue;
    }
    await sleep(200);
  }
}

async function ownerIsGone(lock: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number(await readFile(join(lock, 'pid'), 'utf8'));
  } catch {
    // Just created, pid not written yet: give its owner a moment, unless it is old.
    try {
      return Date.now() - (await stat(lock)).mtimeMs > 10_000;
    } catch {
      return false;
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function isComplete(directory: string): Promise<boolean> {
  try {
    await stat(join(directory, '.complete'));
    return true;
  } catch {
    return false;
  }
}
