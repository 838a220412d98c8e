import { isAbsolute, relative, resolve } from 'node:path';
import type { MapEntry } from '@x/qcow2/read';

const hex = (value: number) => `0x${value.toString(16)}`;

export function formatMapHeader(): string {
  return `${'Offset'.padEnd(16)}${'Length'.padEnd(16)}${'Kind'.padEnd(18)}${'Depth'.padEnd(7)}${'Mapped to'.padEnd(16)}File`;
}

/** One run per line: like qemu-img map's table, with the kind and depth spelt out. */
export function formatMapEntry(entry: MapEntry): string {
  const kind = entry.compressed
    ? 'data, compressed'
    : entry.data
      ? entry.zero
        ? 'data (reads zero)'
        : 'data'
      : entry.zero
        ? entry.present
          ? 'zero'
          : 'unallocated'
        : 'unallocated';
  return [
    hex(entry.start).padEnd(16),
    hex(entry.length).padEnd(16),
    kind.padEnd(18),
    String(entry.depth).padEnd(7),
    (entry.offset === undefined ? '-' : hex(entry.offset)).padEnd(16),
    entry.filename ?? '',
  ]
    .join('')
    .trimEnd();
}

/**
 * How map names files: the image as given and its backing or data files are
 * resolved to absolute paths by the library; show them all in the style the
 * image was named in, as qemu-img does — absolute when the image path was
 * absolute, else relative to the working directory.
 */
export function displayPath(image: string): (path: string) => string {
  if (isAbsolute(image)) return (path) => resolve(path);
  return (path) => relative(process.cwd(), resolve(path)) || path;
}
