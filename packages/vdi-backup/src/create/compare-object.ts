import type { BlockDevice, Semaphore } from '@x/blockio';
import { SECTOR_SIZE } from '../format/stream-format.js';
import { firstDifferingSector, lastDifferingSector } from './compare.js';
import { type SharedRanges, zeroSpans } from './equality-hints.js';
import type { ScanResult, SpanScanner } from './file-scanner.js';
import type { HostFiles, LocatedSpan } from './host-files.js';
import { intersectSpans, type Span, spanLength, subtractSpans, unionSpans } from './ranges.js';
import { scanHostFiles } from './scan-host-files.js';

export interface ObjectOutcome {
  kind: 'skipped-unallocated' | 'skipped-shared' | 'compared';
  record: { idx: number; offset: number; data: Buffer } | undefined;
  /** A record found by a scanner whose bytes are still to be read (fillRecord). */
  pending?: PendingRecord | undefined;
  bytesRead: number;
  bytesSkipped: number;
}

/** Where an object differs, object-relative, with what is known about its ranges. */
export interface PendingRecord {
  idx: number;
  /** The object's first byte on the disk. */
  start: number;
  first: number;
  last: number;
  /** The spans that were read and compared. */
  local: readonly Span[];
  /** The spans that read as zeros on both sides. */
  zeroLocal: readonly Span[];
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

/** With a SpanScanner nothing is read per object here: records are read by fillRecord. */
export const NO_BUFFERS: ObjectBuffers = {
  to: Buffer.alloc(0),
  fromPiece: Buffer.alloc(0),
  toPiece: Buffer.alloc(0),
};

/** How objects are compared: what is known without reading, and where they are read. */
export interface CompareContext {
  sharedRanges?: SharedRanges | undefined;
  /**
   * Compares on worker threads: every object of two files, or with `hostFiles` the
   * objects it places.
   */
  scanner?: SpanScanner | undefined;
  /**
   * The files the disks' data is in: objects whose spans `hostFiles.locate` places are
   * read from them (scanHostFiles, or the scanner's threads); the others through the
   * devices. With a scanner those are read here with buffers from `lend` (the record
   * is then read again by fillRecord, so the buffers go back at once and never wait
   * for earlier objects' turns).
   */
  hostFiles?: HostFiles | undefined;
  lend?: BufferLender | undefined;
}

/** Object buffers lent for one comparison at a time, at most as many as the semaphore allows. */
export interface BufferLender {
  slots: Semaphore;
  pool: ObjectBuffers[];
  make(): ObjectBuffers;
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
 * With a scanner (two files scanned on worker threads, or the files two QCOW2 views
 * keep their clusters in) the comparing is done there, and the outcome says where the
 * record is (`pending`): its bytes are read from "to" by fillRecord when its turn
 * comes, into one buffer for all records.
 *
 * `buffers` hands out the object's buffers when first called: an object decided
 * without reading (most of them, between two snapshots) takes none.
 */
export async function compareObject(
  from: BlockDevice,
  to: BlockDevice,
  idx: number,
  objectSize: number,
  buffers: () => ObjectBuffers,
  context: CompareContext,
): Promise<ObjectOutcome> {
  const { sharedRanges, scanner, hostFiles } = context;
  const start = idx * objectSize;
  const end = Math.min(start + objectSize, to.size);
  const length = end - start;
  if (end <= from.size && (await sharedRanges?.wholly?.(start, end))) {
    return { kind: 'skipped-shared', record: undefined, bytesRead: 0, bytesSkipped: 2 * length };
  }
  const [fromZero, toZero, shared] = await Promise.all([
    zeroSpans(from, start, end),
    zeroSpans(to, start, end),
    sharedRanges ? sharedRanges(start, end - start) : Promise.resolve([] as Span[]),
  ]);
  const zero = intersectSpans(fromZero, toZero);
  const knownEqual = unionSpans([...zero, ...shared]);
  const unknown = subtractSpans(start, end, knownEqual);
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
  const located = hostFiles ? await hostFiles.locate(unknown, fromZero, toZero) : undefined;
  let found: ScanResult & { unread?: number };
  let lent: ObjectBuffers | undefined;
  if (scanner && !hostFiles) found = await scanElsewhere(start, unknown, scanner);
  else if (scanner && located) found = await scanLocatedElsewhere(start, located, scanner);
  else if (hostFiles && located && !scanner) {
    found = scanHostFiles(hostFiles, start, located, buffers());
  } else if (context.lend) {
    // Host files, but this object is kept otherwise: read here with lent buffers.
    lent = await borrow(context.lend);
    try {
      found = await scanHere(from, to, start, local, lent);
    } finally {
      giveBack(context.lend, lent);
    }
  } else found = await scanHere(from, to, start, local, buffers());
  const { first, last } = found;
  // "from" bytes a scan did not need (between the first and last difference) count as skipped.
  const bytesRead = 2 * spanLength(local) - (found.unread ?? 0);
  const outcome: ObjectOutcome = {
    kind: 'compared',
    record: undefined,
    bytesRead,
    bytesSkipped: 2 * length - bytesRead,
  };
  if (first < 0) return outcome;
  const zeroLocal = zero.map(([s, e]) => [s - start, e - start] as const);
  const pending: PendingRecord = { idx, start, first, last, local, zeroLocal };
  if (scanner || lent) {
    outcome.pending = pending;
    return outcome;
  }
  // scanHere (or scanHostFiles) left "to"'s bytes of the compared spans in buffers.to.
  outcome.record = await fillGaps(to, pending, buffers().to, outcome);
  return outcome;
}

async function borrow(lend: BufferLender): Promise<ObjectBuffers> {
  await lend.slots.acquire();
  return lend.pool.pop() ?? lend.make();
}

function giveBack(lend: BufferLender, buffers: ObjectBuffers): void {
  lend.pool.push(buffers);
  lend.slots.release();
}

/**
 * The record of a `pending` outcome, in `into` (object-sized): "to"'s bytes of the
 * compared spans, then the known-equal gaps (fillGaps).
 */
export async function fillRecord(
  to: BlockDevice,
  pending: PendingRecord,
  into: Buffer,
  outcome: ObjectOutcome,
): Promise<NonNullable<ObjectOutcome['record']>> {
  const { start, first, last, local } = pending;
  for (const [s, e] of intersectSpans(local, [[first, last + SECTOR_SIZE]])) {
    await to.read(start + s, into.subarray(s, e));
  }
  return fillGaps(to, pending, into, outcome);
}

/**
 * Fills the known-equal gaps inside the record with "to"'s bytes: zeros where both
 * sides read as zeros, else read from "to" (shared bytes are "to"'s bytes too; counted
 * as read). The compared spans' bytes are in `into` already.
 */
async function fillGaps(
  to: BlockDevice,
  pending: PendingRecord,
  into: Buffer,
  outcome: ObjectOutcome,
): Promise<NonNullable<ObjectOutcome['record']>> {
  const { idx, start, first, last, local, zeroLocal } = pending;
  const recordEnd = last + SECTOR_SIZE;
  for (const [s, e] of subtractSpans(first, recordEnd, local)) {
    for (const [zs, ze] of intersectSpans([[s, e]], zeroLocal)) into.fill(0, zs, ze);
    for (const [ss, se] of subtractSpans(s, e, zeroLocal)) {
      await to.read(start + ss, into.subarray(ss, se));
      outcome.bytesRead += se - ss;
      outcome.bytesSkipped -= se - ss;
    }
  }
  return { idx, offset: first, data: into.subarray(first, recordEnd) };
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

/** The scanner compares the `located` spans (absolute offsets). Object-relative result. */
async function scanLocatedElsewhere(
  start: number,
  located: readonly LocatedSpan[],
  scanner: SpanScanner,
): Promise<ScanResult> {
  const found = await scanner.scanLocated(located);
  if (found.first < 0) return { first: -1, last: -1 };
  return { first: found.first - start, last: found.last - start };
}

/** The scanner compares the `unknown` (absolute) spans. Object-relative result. */
async function scanElsewhere(
  start: number,
  unknown: readonly Span[],
  scanner: SpanScanner,
): Promise<ScanResult> {
  const found = await scanner.scan(unknown);
  if (found.first < 0) return { first: -1, last: -1 };
  return { first: found.first - start, last: found.last - start };
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
