import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
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
): AsyncIterable<Extent> {
  if (range.length === 0) return;
  const mapped = await mapFileData(path, fileSize);
  if (mapped === undefined) {
    yield { ...range, kind: 'data' };
    return;
  }
  yield* clipExtents(mapped, fileSize, range);
}

/** Data runs of a file as [offset, end, kind] in ascending order, or undefined if unknown. */
export type FileDataMap = Array<{ offset: number; end: number; kind: 'data' | 'zero' }>;

export function* clipExtents(
  mapped: FileDataMap,
  fileSize: number,
  range: ByteRange,
): Iterable<Extent> {
  const rangeEnd = range.offset + range.length;
  let position = range.offset;
  for (const run of mapped) {
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

let filefragMissing = false;

export async function mapFileData(
  path: string,
  fileSize: number,
): Promise<FileDataMap | undefined> {
  if (process.platform !== 'linux' || filefragMissing || fileSize === 0) return undefined;
  const output = await runFilefrag(resolve(path));
  if (output === undefined) return undefined;
  return parseFilefrag(output, fileSize);
}

function runFilefrag(path: string): Promise<string | undefined> {
  return new Promise((done) => {
    execFile(
      'filefrag',
      ['-e', '-s', '-b1024', path],
      { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout) => {
        if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') filefragMissing = true;
        done(error ? undefined : stdout);
      },
    );
  });
}

const EXTENT_LINE = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+\d+\.\.\s*\d+:\s+\d+:\s*(\d+:)?\s*(\S*)\s*$/;

/**
 * Parses `filefrag -e -b1024` output. Returns undefined unless the output is the
 * FIEMAP extent table we expect and the extent count matches.
 */
export function parseFilefrag(output: string, fileSize: number): FileDataMap | undefined {
  const lines = output.split('\n');
  if (!lines.some((line) => /^\s*ext:\s+logical_offset:/.test(line))) return undefined;
  const summary = lines.map((line) => /: (\d+) extents? found$/.exec(line)).find(Boolean);
  if (!summary) return undefined;
  const runs: FileDataMap = [];
  let parsed = 0;
  for (const line of lines) {
    const match = EXTENT_LINE.exec(line);
    if (!match) continue;
    parsed++;
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
  if (parsed !== Number(summary[1])) return undefined;
  return runs;
}
