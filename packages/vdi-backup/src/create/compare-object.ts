import type { BlockDevice } from '@x/blockio';
import { SECTOR_SIZE } from '../format/stream-format.js';
import { firstDifferingSector, lastDifferingSector } from './compare.js';
import { type SharedRanges, zeroSpans } from './equality-hints.js';
import type { ScanResult, SpanScanner } from './file-scanner.js';
import { intersectSpans, type Span, spanLength, subtractSpans, unionSpans } from './ranges.js';

export interface ObjectOutcome {
  kind: 'skipped-unallocated' | 'skipped-shared' | 'compared';
  record: { idx: number; offset: number; data: Buffer } | undefined;
  bytesRead: number;
  bytesSkipped: number;
}

/**
 * The memory one object's comparison works in, reused from object to object.
 * `to` holds the record (object-sized); `fromPiece` and `toPiece` hold one read of
 * each side (`readSize` bytes).
 */
export interface ObjectBuffers {
  to: Buffer;
  fromPiece: Buffer;
  toPiece: Buffer;
}

export function objectBuffers(objectSize: number, readSize: number): ObjectBuffers {
  const to = Buffer.allocUnsafe(objectSize);
  return {
    to,
    fromPiece: Buffer.allocUnsafe(readSize),
    // Whole-object reads go straight into `to`: no second object-sized buffer.
    toPiece: readSize < objectSize ? Buffer.allocUnsafe(readSize) : to,
  };
}

/** With a SpanScanner the pieces are read elsewhere: only the record's buffer is needed. */
export function recordBuffers(objectSize: number): ObjectBuffers {
  const none = Buffer.alloc(0);
  return { to: Buffer.allocUnsafe(objectSize), fromPiece: none, toPiece: none };
}

/**
 * One object of the diff. Ranges known equal (zeros on both sides, shared storage) are
 * never read; the rest is read from both sides, `readSize` bytes at a time, and
 * compared piece by piece while the piece is still in the CPU cache (reading a whole
 * object first and comparing it afterwards costs a second trip through memory for
 * every byte). Until the first difference, "to"'s pieces are read into a small buffer
 * that is overwritten; from the first difference on they are kept in `buffers.to`,
 * which then holds the record. The record spans the first to the last differing
 * sector, its known-equal gaps filled in from zeros or read from "to" (shared bytes
 * are "to"'s bytes too).
 *
 * With a `scanner` (two files scanned on worker threads) the comparing is done there;
 * only the record's bytes are then read here, from "to" (they were read once to compare
 * them, so they are not counted in `bytesRead` twice).
 */
export async function compareObject(
  from: BlockDevice,
  to: BlockDevice,
  idx: number,
  objectSize: number,
  buffers: ObjectBuffers,
  sharedRanges: SharedRanges | undefined,
  scanner?: SpanScanner,
): Promise<ObjectOutcome> {
  const start = idx * objectSize;
  const end = Math.min(start + objectSize, to.size);
  const [fromZero, toZero, shared] = await Promise.all([
    zeroSpans(from, start, end),
    zeroSpans(to, start, end),
    sharedRanges ? sharedRanges(start, end - start) : Promise.resolve([] as Span[]),
  ]);
  const zero = intersectSpans(fromZero, toZero);
  const knownEqual = unionSpans([...zero, ...shared]);
  const unknown = subtractSpans(start, end, knownEqual);
  const length = end - start;
  if (unknown.length === 0) {
    const allZero = spanLength(zero) === length;
    return {
      kind: allZero ? 'skipped-unallocated' : 'skipped-shared',
      record: undefined,
      bytesRead: 0,
      bytesSkipped: 2 * length,
    };
  }

  // Object-relative spans from here on.
  const local = unknown.map(([s, e]) => [s - start, e - start] as const);
  const { first, last } = scanner
    ? await scanElsewhere(to, start, unknown, local, buffers, scanner)
    : await scanHere(from, to, start, local, buffers);
  const bytesRead = 2 * spanLength(local);
  const outcome: ObjectOutcome = {
    kind: 'compared',
    record: undefined,
    bytesRead,
    bytesSkipped: 2 * length - bytesRead,
  };
  if (first < 0) return outcome;
  const recordEnd = last + SECTOR_SIZE;

  // Fill the known-equal gaps inside the record with "to"'s bytes.
  const gaps = subtractSpans(first, recordEnd, local);
  const zeroLocal = zero.map(([s, e]) => [s - start, e - start] as const);
  for (const [s, e] of gaps) {
    for (const [zs, ze] of intersectSpans([[s, e]], zeroLocal)) buffers.to.fill(0, zs, ze);
    for (const [ss, se] of subtractSpans(s, e, zeroLocal)) {
      await to.read(start + ss, buffers.to.subarray(ss, se));
      outcome.bytesRead += se - ss;
      outcome.bytesSkipped -= se - ss;
    }
  }
  outcome.record = { idx, offset: first, data: buffers.to.subarray(first, recordEnd) };
  return outcome;
}

/**
 * Reads and compares the object's `local` spans here, piece by piece; leaves "to"'s
 * bytes from the first difference on in `buffers.to`. Object-relative result.
 */
async function scanHere(
  from: BlockDevice,
  to: BlockDevice,
  start: number,
  local: readonly Span[],
  buffers: ObjectBuffers,
): Promise<ScanResult> {
  const readSize = buffers.fromPiece.byteLength;
  let first = -1;
  let last = -1;
  for (const [spanStart, spanEnd] of local) {
    for (let s = spanStart; s < spanEnd; s += readSize) {
      const e = Math.min(spanEnd, s + readSize);
      const fromBytes = buffers.fromPiece.subarray(0, e - s);
      const keep = first >= 0 || buffers.toPiece === buffers.to;
      const toBytes = keep ? buffers.to.subarray(s, e) : buffers.toPiece.subarray(0, e - s);
      await readBoth(from, to, start + s, fromBytes, toBytes);
      if (fromBytes.equals(toBytes)) continue;
      const whole: Span[] = [[0, e - s]];
      if (first < 0) {
        first = s + firstDifferingSector(fromBytes, toBytes, whole);
        if (!keep) buffers.to.set(toBytes, s);
      }
      last = s + lastDifferingSector(fromBytes, toBytes, whole);
    }
  }
  return { first, last };
}

/**
 * The scanner compares the `unknown` (absolute) spans; then "to"'s bytes of the spans
 * between the first and the last difference are read into `buffers.to`, as scanHere
 * leaves them. Object-relative result.
 */
async function scanElsewhere(
  to: BlockDevice,
  start: number,
  unknown: readonly Span[],
  local: readonly Span[],
  buffers: ObjectBuffers,
  scanner: SpanScanner,
): Promise<ScanResult> {
  const found = await scanner.scan(unknown);
  if (found.first < 0) return { first: -1, last: -1 };
  const first = found.first - start;
  const last = found.last - start;
  for (const [s, e] of intersectSpans(local, [[first, last + SECTOR_SIZE]])) {
    await to.read(start + s, buffers.to.subarray(s, e));
  }
  return { first, last };
}

/**
 * Both sides of one piece. Devices that complete synchronously (queue depth 1) are
 * read one after the other: a Promise.all per piece costs more than it could overlap.
 * Others (the thread pool, a network) read both at once.
 */
async function readBoth(
  from: BlockDevice,
  to: BlockDevice,
  offset: number,
  fromBytes: Buffer,
  toBytes: Buffer,
): Promise<void> {
  if (from.queueDepth === 1 && to.queueDepth === 1) {
    await readSide(from, offset, fromBytes);
    await to.read(offset, toBytes);
    return;
  }
  await Promise.all([readSide(from, offset, fromBytes), to.read(offset, toBytes)]);
}

/** Reads "from", with zeros past its end (a disk that grew between the snapshots). */
async function readSide(device: BlockDevice, offset: number, into: Buffer): Promise<void> {
  const inside = Math.max(0, Math.min(into.byteLength, device.size - offset));
  if (inside > 0) await device.read(offset, into.subarray(0, inside));
  into.fill(0, inside);
}
