import { sizeOption, UsageError } from '@x/blockio/cli';
import { checkObjectSize, DEFAULT_OBJECT_SIZE } from '@x/vdi-backup';

/** `--object-size`: a size that is a power of two from 512 B to 2 GiB; default 4 MiB. */
export function parseObjectSize(text: string | undefined): number {
  if (text === undefined) return DEFAULT_OBJECT_SIZE;
  const size = sizeOption('--object-size')(text);
  try {
    return checkObjectSize(size);
  } catch {
    throw new UsageError(`--object-size must be a power of two from 512 to 2G, not ${text}`);
  }
}

/** The stream to read: a file, or standard input when `-` or absent (never a terminal). */
export function inputStream(
  file: string | undefined,
  flag: string,
): string | NodeJS.ReadableStream {
  if (file !== undefined && file !== '-') return file;
  if (process.stdin.isTTY) {
    throw new UsageError(
      `refusing to read a backup stream from a terminal; give ${flag} FILE or pipe the stream in`,
    );
  }
  return process.stdin;
}

/** Where a stream goes: a file, or standard output when `-` or absent (never a terminal). */
export function outputStream(
  file: string | undefined,
  json: boolean,
): string | NodeJS.WritableStream {
  if (file !== undefined && file !== '-') return file;
  if (json) {
    throw new UsageError('--json needs -o FILE: standard output carries the stream');
  }
  if (process.stdout.isTTY) {
    throw new UsageError(
      'refusing to write a binary stream to a terminal; give -o FILE or pipe the output',
    );
  }
  return process.stdout;
}

/** Human summaries go to stderr when stdout carries the stream. */
export function say(toStdout: boolean, line: string): void {
  (toStdout ? process.stdout : process.stderr).write(`${line}\n`);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]} (${bytes} bytes)`;
}
