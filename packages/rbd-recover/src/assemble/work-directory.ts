import { writeSync } from 'node:fs';
import { appendFile, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RbdRecoverError } from '../errors.js';

/**
 * A recover's own directory beside its output (`<output>.rbd-recover/`): the lock,
 * the state file and the outputs being written. Nothing appears under the output's
 * name until the end, and a rerun with `resume` finds everything here.
 */
export const STATE_FORMAT = 'rbd-recover-state';
export const STATE_VERSION = 1;

export function workDirectoryFor(output: string): string {
  return `${output}.rbd-recover`;
}

/** Takes `<dir>/lock` (holding our pid); a lock whose process is gone is taken over. */
export async function acquireLock(directory: string): Promise<() => Promise<void>> {
  const path = join(directory, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new RbdRecoverError(
          'LOCKED',
          `another rbd-recover (pid ${owner}) is writing this output; wait for it or stop it`,
          { path },
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new RbdRecoverError('LOCKED', 'could not take the lock', { path });
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StateHeader {
  readonly format: typeof STATE_FORMAT;
  readonly version: typeof STATE_VERSION;
  /** Digest of the plan: a resume of another image, inventory or layout is refused. */
  readonly plan: string;
}

/** What an earlier run finished (`done`) and began (`started`), by `<state>:<index>`. */
export interface RecordedState {
  /** `checksum`: the SHA-1 or CRC-32 (hex) recorded. */
  readonly done: Map<string, { checksum: string; bytes: number }>;
  readonly started: Set<string>;
}

export async function readState(path: string, plan: string): Promise<RecordedState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  let header: StateHeader;
  try {
    header = JSON.parse(lines[0] ?? '') as StateHeader;
  } catch {
    throw new RbdRecoverError('BAD_STATE', 'the state file does not start with its header', {
      path,
    });
  }
  if (header.format !== STATE_FORMAT || header.version !== STATE_VERSION) {
    throw new RbdRecoverError('BAD_STATE', 'not a state file of this version', { path });
  }
  if (header.plan !== plan) {
    throw new RbdRecoverError(
      'BAD_STATE',
      'the earlier run rebuilt something else (another image, inventory or output format); start over with --force',
      { path },
    );
  }
  const done = new Map<string, { checksum: string; bytes: number }>();
  const started = new Set<string>();
  for (const line of lines.slice(1)) {
    if (line.trim() === '') continue;
    let entry: {
      event: string;
      targets: string[];
      sha1?: string;
      crc32?: string;
      bytes?: number;
    };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a line cut short by a crash: that object is simply not done
    }
    for (const target of entry.targets ?? []) {
      if (entry.event === 'start') started.add(target);
      else if (entry.event === 'done')
        done.set(target, { checksum: entry.sha1 ?? entry.crc32 ?? '', bytes: entry.bytes ?? 0 });
    }
  }
  return { done, started };
}

export async function writeStateHeader(path: string, plan: string): Promise<void> {
  const header: StateHeader = { format: STATE_FORMAT, version: STATE_VERSION, plan };
  await appendFile(path, `${JSON.stringify(header)}\n`, { mode: 0o600 });
}

/** The state file, open for appending while a recover runs. */
export interface StateLog {
  /** Appends one line before returning (synchronously: ordered, and no thread-pool hop). */
  append(entry: Record<string, unknown>): void;
  close(): Promise<void>;
}

/**
 * Opens the state file once for the run: an append per object start and end through
 * appendFile (open, write, close on the thread pool, each awaited in the transfer's
 * path) showed in profiles.
 */
export async function openStateLog(path: string): Promise<StateLog> {
  const handle = await open(path, 'a', 0o600);
  return {
    append(entry) {
      const line = Buffer.from(`${JSON.stringify(entry)}\n`);
      let done = 0;
      while (done < line.byteLength) done += writeSync(handle.fd, line, done);
    },
    close: () => handle.close(),
  };
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
