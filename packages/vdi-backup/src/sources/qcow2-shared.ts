import type { GuestMapping } from '@x/qcow2';
import type { Qcow2Image } from '@x/qcow2/read';
import type { SharedRanges } from '../create/equality-hints.js';
import type { Span } from '../create/ranges.js';
import { tablePairs, wholeRangeShared } from './qcow2-tables.js';

/**
 * For two views of one QCOW2 file (two internal snapshots, or a snapshot and the active
 * layer): the guest ranges both map to the same host bytes — the same normal cluster,
 * the same compressed cluster, or unallocated in both (so both fall through to the same
 * backing file) — are equal without reading them. Counts the bytes found so.
 * An object whose clusters are all the same data clusters in both views is found so
 * from the two L2 tables' entries alone (`wholly`, wholeRangeShared): most objects of
 * two snapshots are, and building their mappings four times over cost most of the
 * run's time (bench/bench.mjs, create-qcow2).
 */
export function qcow2SharedRanges(from: Qcow2Image, to: Qcow2Image): SharedRanges {
  const ranges: SharedRanges = async (offset, length) => {
    const end = Math.min(offset + length, from.size, to.size);
    if (end <= offset) return [];
    const [a, b] = await Promise.all([
      from.mapGuestRange(offset, end - offset),
      to.mapGuestRange(offset, end - offset),
    ]);
    return sharedSpans(a, b);
  };
  const tables = tablePairs(from, to);
  ranges.wholly = (offset, end) => wholeRangeShared(from, to, offset, end, tables);
  return ranges;
}

function sharedSpans(a: GuestMapping[], b: GuestMapping[]): Span[] {
  const out: Span[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as GuestMapping;
    const y = b[j] as GuestMapping;
    const start = Math.max(x.offset, y.offset);
    const end = Math.min(x.offset + x.length, y.offset + y.length);
    if (start < end && sameStorage(x, y, start)) {
      const last = out.at(-1);
      if (last && last[1] === start) out[out.length - 1] = [last[0], end];
      else out.push([start, end]);
    }
    if (x.offset + x.length <= y.offset + y.length) i++;
    else j++;
  }
  return out;
}

/** Whether guest offset `at` (inside both runs) is stored in the same place by both. */
function sameStorage(x: GuestMapping, y: GuestMapping, at: number): boolean {
  if (x.type !== y.type) return false;
  switch (x.type) {
    case 'unallocated':
      // Both fall through to the one backing file (or read zeros): equal either way.
      return true;
    case 'normal':
      return (
        x.hostOffset !== undefined &&
        y.hostOffset !== undefined &&
        x.hostOffset + (at - x.offset) === y.hostOffset + (at - y.offset)
      );
    case 'compressed':
      return (
        x.compressed !== undefined &&
        y.compressed !== undefined &&
        x.compressed.descriptor.offset === y.compressed.descriptor.offset &&
        x.compressed.clusterOffset === y.compressed.clusterOffset
      );
    default:
      // Zero clusters: extents() already reports them as zero on both sides.
      return false;
  }
}
