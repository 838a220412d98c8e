import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromSystemError } from '@x/blockio';
import { TapeRestoreError } from '../errors.js';

export interface LockOptions {
  /** How long to wait for another holder (PBS waits 10 s for its locks). Default 10 000 ms. */
  timeoutMs?: number | undefined;
  /** Named in the LOCKED error. */
  what: string;
}

/**
 * An exclusive lock held as a file created with O_EXCL holding our pid. Node has no
 * flock(2); a lock file whose pid is no longer running is stale and taken over, so a
 * killed restore does not block the next one. Returns the release function.
 */
export async function acquireLockFile(
  path: string,
  options: LockOptions,
): Promise<() => Promise<void>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await unlink(path).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw fromSystemError(error, `take the lock on ${options.what}`, { path });
      }
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(holder) && holder > 0 && !isRunning(holder)) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (Date.now() >= deadline) {
      throw new TapeRestoreError(
        'LOCKED',
        `${options.what} is locked by ${Number.isSafeInteger(holder) ? `process ${holder}` : 'another process'}`,
        { path, structure: 'lock file' },
      );
    }
    await sleep(50);
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
