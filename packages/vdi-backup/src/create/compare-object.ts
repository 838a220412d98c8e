import type { BlockDevice } from '@x/blockio';
import { SECTOR_SIZE } from '../format/stream-format.js';
import { firstDifferingSector, lastDifferingSector } from './compare.js';
import { type SharedRanges, zeroSpans } from './equality-hints.js';
import { intersectSpans, type Span, spanLength, subtractSpans, unionSpans } from './ranges.js';

export interface ObjectOutcome {
  kind: 'skipped-unallocated' | 'skipped-shared' | 'compared';
  record: { idx: number; offset: number; data: Buffer } | undefined;
  bytesRead: number;
  bytesSkipped: number;
}

/**
 * One object of the diff. Ranges known equal (zeros on both sides, shared storage) are
 * never read; the rest is read from both sides and compared; the record spans the
 * first to the last differing sector, its known-equal gaps filled in from zeros or
 * read from "to" (shared bytes are "to"'s bytes too).
 */
export async function compareObject(
  from: BlockDevice,
  to: BlockDevice,
  idx: number,
  objectSize: number,
  buffers: { from: Buffer; to: Buffer },
  sharedRanges: SharedRanges | undefined,
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
  let bytesRead = 0;
  for (const [s, e] of local) {
    // Both sides at once: devices that read on the thread pool or a network overlap them.
    await Promise.all([
      readSide(from, start + s, buffers.from.subarray(s, e)),
      to.read(start + s, buffers.to.subarray(s, e)),
    ]);
    bytesRead += 2 * (e - s);
  }
  const first = firstDifferingSector(buffers.from, buffers.to, local);
  const outcome: ObjectOutcome = {
    kind: 'compared',
    record: undefined,
    bytesRead,
    bytesSkipped: 2 * length - bytesRead,
  };
  if (first < 0) return outcome;
  const last = lastDifferingSector(buffers.from, buffers.to, local);
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

/** Reads "from", with zeros past its end (a disk that grew between the snapshots). */
async function readSide(device: BlockDevice, offset: number, into: Buffer): Promise<void> {
  const inside = Math.max(0, Math.min(into.byteLength, device.size - offset));
  if (inside > 0) await device.read(offset, into.subarray(0, inside));
  into.fill(0, inside);
}
