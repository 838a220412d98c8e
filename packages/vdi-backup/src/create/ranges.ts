import type { ByteRange } from '@x/blockio';

/** Sorted, disjoint ranges as [start, end) pairs; small helpers for one object's plan. */
export type Span = readonly [start: number, end: number];

/** Union of sorted-or-not spans, merged where they overlap or touch. */
export function unionSpans(spans: Iterable<Span>): Span[] {
  const sorted = [...spans].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** [start, end) minus the (sorted, disjoint) `holes`. */
export function subtractSpans(start: number, end: number, holes: readonly Span[]): Span[] {
  const out: Span[] = [];
  let position = start;
  for (const [holeStart, holeEnd] of holes) {
    if (holeEnd <= position) continue;
    if (holeStart >= end) break;
    if (holeStart > position) out.push([position, holeStart]);
    position = Math.max(position, holeEnd);
  }
  if (position < end) out.push([position, end]);
  return out;
}

/** Intersection of two sorted, disjoint span lists. */
export function intersectSpans(a: readonly Span[], b: readonly Span[]): Span[] {
  const out: Span[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [aStart, aEnd] = a[i] as Span;
    const [bStart, bEnd] = b[j] as Span;
    const start = Math.max(aStart, bStart);
    const end = Math.min(aEnd, bEnd);
    if (start < end) out.push([start, end]);
    if (aEnd < bEnd) i++;
    else j++;
  }
  return out;
}

export function spanLength(spans: readonly Span[]): number {
  let total = 0;
  for (const [start, end] of spans) total += end - start;
  return total;
}

export function toSpan(range: ByteRange): Span {
  return [range.offset, range.offset + range.length];
}
