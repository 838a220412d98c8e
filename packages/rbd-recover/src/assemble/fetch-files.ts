import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachConcurrent } from '@x/blockio';
import { type CommandOptions, streamFiles } from '../transport/osd-commands.js';
import type { TarEntryHandler } from '../transport/tar-reader.js';
import type { HostTransport } from '../transport/transport.js';

const CHUNK = 1 << 20;

/**
 * Streams files of one directory on a host to `onEntry`: over SSH one `tar` stream
 * for the whole batch; locally straight from the files (a few at a time). Resolves
 * to the paths that could not be read.
 */
export async function fetchFiles(
  transport: HostTransport,
  directory: string,
  paths: readonly string[],
  onEntry: TarEntryHandler,
  options: CommandOptions,
): Promise<string[]> {
  if (transport.host !== 'local') {
    return (await streamFiles(transport, directory, paths, onEntry, options)).missing;
  }
  const missing: string[] = [];
  const buffer = Buffer.allocUnsafe(CHUNK);
  await forEachConcurrent(
    paths,
    1,
    async (path) => {
      let handle: Awaited<ReturnType<typeof open>>;
      try {
        handle = await open(join(directory, Buffer.from(path, 'latin1').toString('utf8')), 'r');
      } catch {
        missing.push(path);
        return;
      }
      try {
        const { size } = await handle.stat();
        const sink = await onEntry(path, size);
        let position = 0;
        for (;;) {
          const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
          if (bytesRead === 0) break;
          // The sink copies what it keeps: the buffer is reused.
          await sink.write(buffer.subarray(0, bytesRead));
          position += bytesRead;
        }
        await sink.end();
      } finally {
        await handle.close();
      }
    },
    { signal: options.signal },
  );
  return missing;
}
