import { SECTOR_SIZE } from '../format/stream-format.js';
import type { Span } from './ranges.js';

/** Compare in steps of this size before narrowing down to a sector (memcmp is fast). */
const COARSE = 64 * 1024;

/**
 * The first sector (object-relative offset) where `a` and `b` differ inside the
 * spans, scanning forwards, or -1. Spans are sector-aligned.
 */
export function firstDifferingSector(a: Buffer, b: Buffer, spans: readonly Span[]): number {
  for (const [start, end] of spans) {
    if (a.subarray(start, end).equals(b.subarray(start, end))) continue;
    for (let coarse = start; coarse < end; coarse += COARSE) {
      const coarseEnd = Math.min(end, coarse + COARSE);
      if (a.subarray(coarse, coarseEnd).equals(b.subarray(coarse, coarseEnd))) continue;
      for (let sector = coarse; sector < coarseEnd; sector += SECTOR_SIZE) {
        const sectorEnd = sector + SECTOR_SIZE;
        if (!a.subarray(sector, sectorEnd).equals(b.subarray(sector, sectorEnd))) return sector;
      }
    }
  }
  return -1;
}

/** The last sector where `a` and `b` differ inside the spans, scanning backwards, or -1. */
export function lastDifferingSector(a: Buffer, b: Buffer, spans: readonly Span[]): number {
  for (let index = spans.length - 1; index >= 0; index--) {
    const [start, end] = spans[index] as Span;
    if (a.subarray(start, end).equals(b.subarray(start, end))) continue;
    for (let coarseEnd = end; coarseEnd > start; coarseEnd -= COARSE) {
      const coarse = Math.max(start, coarseEnd - COARSE);
      if (a.subarray(coarse, coarseEnd).equals(b.subarray(coarse, coarseEnd))) continue;
      for (let sector = coarseEnd - SECTOR_SIZE; sector >= coarse; sector -= SECTOR_SIZE) {
        const sectorEnd = sector + SECTOR_SIZE;
        if (!a.subarray(sector, sectorEnd).equals(b.subarray(sector, sectorEnd))) return sector;
      }
    }
  }
  return -1;
}
