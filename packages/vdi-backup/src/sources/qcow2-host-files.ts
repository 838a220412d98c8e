import type { GuestMapping } from '@x/qcow2';
import type { Qcow2Image } from '@x/qcow2/read';
import type { HostFiles, LocatedSpan } from '../create/host-files.js';
import type { Span } from '../create/ranges.js';

/**
 * Where two views of QCOW2 images keep their data, for create's compare threads: a
 * guest range is at its normal cluster's host offset in the image file, or reads as
 * zeros (unallocated or zero clusters, past the end of the smaller view). Objects
 * with anything else in their changed ranges — compressed clusters, clusters that
 * fall through to a backing file with data — are not placed (read through the views
 * instead). Undefined for views whose clusters are not all in their own image file
 * (an external data file) or that salvage a damaged image (missing data reads as
 * zeros there, which the threads would not know).
 */
export function qcow2HostFiles(from: Qcow2Image, to: Qcow2Image): HostFiles | undefined {
  for (const view of [from, to]) {
    if (view.dataFile !== view.file || view.ownsDataFile || view.salvage !== undefined) {
      return undefined;
    }
  }
  return {
    from: from.file,
    to: to.file,
    async locate(spans, fromZero, toZero) {
      const start = spans[0]?.[0];
      const end = spans.at(-1)?.[1];
      if (start === undefined || end === undefined) return [];
      const [a, b] = await Promise.all([mapped(from, start, end), mapped(to, start, end)]);
      return locateSpans(spans, a, fromZero, b, toZero);
    },
  };
}

/** The view's mapping of [start, end), clipped to its size (past it: zeros, see zeroSpans). */
function mapped(view: Qcow2Image, start: number, end: number): Promise<GuestMapping[]> {
  const inside = Math.min(end, view.size);
  return inside > start ? view.mapGuestRange(start, inside - start) : Promise.resolve([]);
}

/**
 * Places `spans` by the two sides' mappings and zero spans (see HostFiles.locate):
 * pieces in disk order, merged where disk and both sides' offsets continue.
 */
export function locateSpans(
  spans: readonly Span[],
  fromMap: readonly GuestMapping[],
  fromZero: readonly Span[],
  toMap: readonly GuestMapping[],
  toZero: readonly Span[],
): LocatedSpan[] | undefined {
  const out: LocatedSpan[] = [];
  for (const [spanStart, spanEnd] of spans) {
    let position = spanStart;
    while (position < spanEnd) {
      const a = placeOf(fromMap, fromZero, position);
      const b = placeOf(toMap, toZero, position);
      if (a === undefined || b === undefined) return undefined;
      const until = Math.min(spanEnd, a.until, b.until);
      const length = until - position;
      const last = out.at(-1);
      if (
        last !== undefined &&
        last.offset + last.length === position &&
        continues(last.from, last.length, a.at) &&
        continues(last.to, last.length, b.at)
      ) {
        last.length += length;
      } else {
        out.push({ offset: position, length, from: a.at, to: b.at });
      }
      position = until;
    }
  }
  return out;
}

/** Whether a piece at `at` continues one at `previous` of `length` bytes (zeros continue zeros). */
function continues(previous: number, length: number, at: number): boolean {
  return previous < 0 ? at < 0 : at === previous + length;
}

/**
 * Where one side keeps guest offset `position`, and up to where that holds: its
 * normal cluster's host offset, -1 inside a zero span, undefined otherwise.
 */
function placeOf(
  map: readonly GuestMapping[],
  zero: readonly Span[],
  position: number,
): { at: number; until: number } | undefined {
  const run = map.find((r) => r.offset <= position && position < r.offset + r.length);
  if (run?.type === 'normal' && run.hostOffset !== undefined) {
    return { at: run.hostOffset + (position - run.offset), until: run.offset + run.length };
  }
  const zeros = zero.find(([s, e]) => s <= position && position < e);
  if (zeros !== undefined) return { at: -1, until: zeros[1] };
  return undefined;
}
