import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fromSystemError } from '@x/blockio';

export interface SpooledStream {
  readonly path: string;
  /** Removes the temporary file. */
  remove(): Promise<void>;
}

/**
 * Copies a stream that cannot be read twice (standard input) into a private temporary
 * file, so it can be validated whole before anything is written, then applied.
 */
export async function spoolToTempFile(
  source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  options: { signal?: AbortSignal | undefined; directory?: string | undefined } = {},
): Promise<SpooledStream> {
  const directory = await mkdtemp(join(options.directory ?? tmpdir(), 'vdi-backup-spool-'));
  const path = join(directory, 'stream.backup');
  const remove = () => rm(directory, { recursive: true, force: true });
  try {
    await pipeline(
      source as NodeJS.ReadableStream,
      createWriteStream(path, { mode: 0o600, flags: 'wx' }),
      { signal: options.signal },
    );
  } catch (error) {
    await remove();
    throw fromSystemError(error, 'spool the backup stream to a temporary file', { path });
  }
  return { path, remove };
}
