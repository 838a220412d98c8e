import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ByteRange, ExtentSet } from '../src/index.js';

/**
 * The reference model: a bitmap over a small universe of UNIVERSE units. Each unit
 * stands for SCALE bytes, so the same properties are checked at small offsets and
 * at offsets near 2^52, where float arithmetic would show any precision slip.
 */
const UNIVERSE = 200;

class Bitmap {
  readonly bits = new Uint8Array(UNIVERSE);
  add(start: number, length: number): void {
    this.bits.fill(1, start, start + length);
  }
  static from(ranges: Array<[number, number]>): Bitmap {
    const bitmap = new Bitmap();
    for (const [start, length] of ranges) bitmap.add(start, length);
    return bitmap;
  }
  combine(other: Bitmap, keep: (a: boolean, b: boolean) => boolean): Bitmap {
    const result = new Bitmap();
    for (let i = 0; i < UNIVERSE; i++) {
      result.bits[i] = keep(this.bits[i] === 1, other.bits[i] === 1) ? 1 : 0;
    }
    return result;
  }
  /** Maximal runs of set bits: the canonical form the set must iterate in. */
  runs(from = 0, to = UNIVERSE): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    for (let i = from; i < to; i++) {
      if (this.bits[i] !== 1) continue;
      const start = i;
      while (i < to && this.bits[i] === 1) i++;
      runs.push([start, i - start]);
    }
    return runs;
  }
  count(from: number, to: number): number {
    let total = 0;
    for (let i = from; i < to; i++) total += this.bits[i] as number;
    return total;
  }
}

const range = fc
  .tuple(fc.nat(UNIVERSE - 1), fc.nat(40))
  .map(([start, length]): [number, number] => [start, Math.min(length, UNIVERSE - start)]);
const ranges = fc.array(range, { maxLength: 25 });
const window = fc
  .tuple(fc.nat(UNIVERSE), fc.nat(UNIVERSE))
  .map(([a, b]): [number, number] => [Math.min(a, b), Math.abs(a - b)]);

for (const scale of [1, 2 ** 44]) {
  const toSet = (list: Array<[number, number]>) => {
    const set = new ExtentSet();
    for (const [start, length] of list) set.add(start * scale, length * scale);
    return set;
  };
  const scaled = (list: Array<[number, number]>): ByteRange[] =>
    list.map(([start, length]) => ({ offset: start * scale, length: length * scale }));

  describe(`ExtentSet against a bitmap model (unit = ${scale} bytes)`, () => {
    it('iterates maximal disjoint ranges in order, with the right totals', () => {
      fc.assert(
        fc.property(ranges, (list) => {
          const set = toSet(list);
          const model = Bitmap.from(list);
          expect([...set]).toEqual(scaled(model.runs()));
          expect(set.totalBytes).toBe(model.count(0, UNIVERSE) * scale);
          expect(set.rangeCount).toBe(model.runs().length);
          expect(set.isEmpty).toBe(model.runs().length === 0);
          const last = model.runs().at(-1);
          expect(set.end).toBe(last ? (last[0] + last[1]) * scale : 0);
          expect(ExtentSet.from(set).toJSON()).toEqual(set.toJSON());
        }),
      );
    });

    it('answers has, covers and overlaps like the bitmap', () => {
      fc.assert(
        fc.property(ranges, window, (list, [start, length]) => {
          const set = toSet(list);
          const model = Bitmap.from(list);
          const inside = model.count(start, start + length);
          expect(set.covers(start * scale, length * scale)).toBe(inside === length);
          expect(set.overlaps(start * scale, length * scale)).toBe(inside > 0);
          if (start < UNIVERSE) expect(set.has(start * scale)).toBe(model.bits[start] === 1);
        }),
      );
    });

    it('clips to a window with within()', () => {
      fc.assert(
        fc.property(ranges, window, (list, [start, length]) => {
          const model = Bitmap.from(list);
          const within = [...toSet(list).within(start * scale, length * scale)];
          expect(within).toEqual(scaled(model.runs(start, start + length)));
        }),
      );
    });

    it('computes union, intersection and difference like the bitmap', () => {
      fc.assert(
        fc.property(ranges, ranges, (a, b) => {
          const [setA, setB] = [toSet(a), toSet(b)];
          const [modelA, modelB] = [Bitmap.from(a), Bitmap.from(b)];
          const expectations: Array<[ExtentSet, Bitmap]> = [
            [setA.union(setB), modelA.combine(modelB, (x, y) => x || y)],
            [setA.intersect(setB), modelA.combine(modelB, (x, y) => x && y)],
            [setA.subtract(setB), modelA.combine(modelB, (x, y) => x && !y)],
            [setB.subtract(setA), modelB.combine(modelA, (x, y) => x && !y)],
          ];
          for (const [actual, model] of expectations) {
            expect([...actual]).toEqual(scaled(model.runs()));
          }
          // The operands are left as they were.
          expect([...setA]).toEqual(scaled(modelA.runs()));
          expect([...setB]).toEqual(scaled(modelB.runs()));
        }),
      );
    });

    it('stays right when adds and queries interleave (buffered adds)', () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(range, window), { maxLength: 20 }), (steps) => {
          const set = new ExtentSet();
          const model = new Bitmap();
          for (const [[start, length], [qStart, qLength]] of steps) {
            set.add(start * scale, length * scale);
            model.add(start, length);
            const inside = model.count(qStart, qStart + qLength);
            expect(set.covers(qStart * scale, qLength * scale)).toBe(inside === qLength);
            const snapshot = set.clone();
            set.add(0, 0);
            expect([...snapshot]).toEqual(scaled(model.runs()));
          }
          expect([...set]).toEqual(scaled(model.runs()));
        }),
      );
    });
  });
}

describe('ExtentSet input checks', () => {
  it('refuses negative, fractional and unsafe ranges with typed errors', () => {
    const set = new ExtentSet();
    expect(() => set.add(-1, 1)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => set.add(0.5, 1)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => set.add(0, -1)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => set.add(2 ** 53 - 1, 1)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(set.isEmpty).toBe(true);
  });

  it('keeps many ascending ranges cheaply and merges touching ones', () => {
    const set = new ExtentSet();
    for (let i = 0; i < 200_000; i++) set.add(i * 8192, 4096);
    set.add(4096, 4096); // joins the first two ranges
    expect(set.rangeCount).toBe(199_999);
    expect(set.totalBytes).toBe(200_000 * 4096 + 4096);
  });
});
