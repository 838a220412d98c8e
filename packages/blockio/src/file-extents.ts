import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { ByteRange, Extent } from './block-device.js';

/**
 * Which parts of a regular file hold data. Node has no lseek(SEEK_DATA), so on
 * Linux we ask the kernel's FIEMAP through e2fsprogs' `filefrag` (present on every
 * Debian-like system), with FIEMAP_FLAG_SYNC so delayed allocations are counted.
 * Anything we cannot parse with certainty falls back to "all data", which is
 * always correct, just slower: callers still skip all-zero blocks by looking.
 */
export async function* fileExtents(
  path: string,
  fileSize: number,
  range: ByteRange,
  map: () => Promise<FileDataMap | undefined> = () => mapFileData(path, fileSize),
): AsyncIterable<Extent> {
  if (range.length === 0) return;
  const mapped = await map();
  if (mapped === undefined) {
    yield { ...range, kind: 'data' };
    return;
  }
  yield* clipExtents(mapped, fileSize, range);
}

/**
 * A file's allocated runs as `{ offset, end, kind }` objects (`end` exclusive), in
 * ascending order, merged where adjacent; gaps are holes. (`mapFileData` returns
 * undefined, not a map, when it cannot tell.)
 */
export type FileDataMap = Array<{ offset: number; end: number; kind: 'data' | 'zero' }>;

export function* clipExtents(
  mapped: FileDataMap,
  fileSize: number,
  range: ByteRange,
): Iterable<Extent> {
  const rangeEnd = range.offset + range.length;
  let position = range.offset;
  // Callers ask for thousands of small ranges: start at the first run that can matter.
  for (let index = firstRunEndingAfter(mapped, position); index < mapped.length; index++) {
    const run = mapped[index] as FileDataMap[number];
    if (run.offset >= rangeEnd) break;
    const start = Math.max(run.offset, position);
    const end = Math.min(run.end, rangeEnd, fileSize);
    if (end <= start) continue;
    if (start > position) yield { offset: position, length: start - position, kind: 'unallocated' };
    yield { offset: start, length: end - start, kind: run.kind };
    position = end;
    if (position >= rangeEnd) return;
  }
  if (position < rangeEnd)
    yield { offset: position, length: rangeEnd - position, kind: 'unallocated' };
}

function firstRunEndingAfter(mapped: FileDataMap, offset: number): number {
  let low = 0;
  let high = mapped.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((mapped[middle] as FileDataMap[number]).end <= offset) low = middle + 1;
    else high = middle;
  }
  return low;
}

export async function mapFileData(
  path: string,
  fileSize: number,
): Promise<FileDataMap | undefined> {
  if (process.platform !== 'linux' || fileSize === 0) return undefined;
  const program = filefragPath();
  if (program === undefined) return undefined;
  const output = await runFilefrag(program, resolve(path));
  if (output === undefined) return undefined;
  return parseFilefrag(output, fileSize);
}

const SBIN_DIRECTORIES = ['/usr/sbin', '/sbin', '/usr/local/sbin'];
let located: { key: string; path: string | undefined } | undefined;

/**
 * Where filefrag is. It lives in /usr/sbin, which ordinary users often lack in
 * PATH, so look there too. `BLOCKKIT_FILEFRAG` names the program explicitly (an
 * empty value or a missing file disables extent discovery, e.g. to test the fallback).
 */
function filefragPath(): string | undefined {
  const override = process.env.BLOCKKIT_FILEFRAG;
  const key = override ?? `PATH=${process.env.PATH ?? ''}`;
  if (located?.key === key) return located.path;
  const candidates =
    override !== undefined
      ? [override]
      : [...(process.env.PATH ?? '').split(delimiter), ...SBIN_DIRECTORIES]
          .filter((directory) => isAbsolute(directory))
          .map((directory) => join(directory, 'filefrag'));
  const path = candidates.find((candidate) => candidate !== '' && isExecutable(candidate));
  located = { key, path };
  return path;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function runFilefrag(program: string, path: string): Promise<string | undefined> {
  return new Promise((done) => {
    // Loaded here, not by an import: every CLI that opens a file loads this module, and
    // node:child_process costs start-up time that only a filefrag run needs.
    process.getBuiltinModule('node:child_process').execFile(
      program,
      ['-e', '-s', '-b1024', path],
      { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, LC_ALL: 'C' } },
      // Any failure (unsupported filesystem, odd output) means "unknown", never an error.
      (error, stdout) => done(error ? undefined : stdout),
    );
  });
}

const EXTENT_LINE = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+\d+\.\.\s*\d+:\s+\d+:\s*(\d+:)?\s*(\S*)\s*$/;

/**
 * Parses `filefrag -e -b1024` output. Returns undefined unless every line between
 * the table header and the `N extents found` summary is an extent row we understand.
 * (The summary's count cannot be checked against the rows: filefrag counts only
 * physically discontiguous extents there.)
 */
export function parseFilefrag(output: string, fileSize: number): FileDataMap | undefined {
  const lines = output.split('\n');
  const header = lines.findIndex((line) => /^\s*ext:\s+logical_offset:/.test(line));
  const summary = lines.findIndex((line) => /: \d+ extents? found$/.test(line));
  // A file that is one hole: filefrag prints no table, only "0 extents found".
  if (header === -1 && summary !== -1 && / 0 extents found$/.test(lines[summary] as string)) {
    return [];
  }
  if (header === -1 || summary < header) return undefined;
  const runs: FileDataMap = [];
  for (const line of lines.slice(header + 1, summary)) {
    const match = EXTENT_LINE.exec(line);
    if (!match) return undefined;
    const offset = Number(match[1]) * 1024;
    const end = Math.min((Number(match[2]) + 1) * 1024, fileSize);
    const flags = (match[4] ?? '').split(',');
    // Unwritten (preallocated) extents read as zeros; everything else may hold data.
    const kind = flags.includes('unwritten') ? 'zero' : 'data';
    if (end <= offset) continue;
    const last = runs[runs.length - 1];
    if (last && offset < last.end) return undefined;
    if (last && last.end === offset && last.kind === kind) last.end = end;
    else runs.push({ offset, end, kind });
  }
  return runs;
}
